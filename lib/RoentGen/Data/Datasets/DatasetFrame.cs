using Microsoft.Data.Analysis;

namespace RoentGen.Data.Datasets;

/// <summary>Tabular views of a dataset for notebooks.</summary>
public static class DatasetFrame
{
    /// <summary>
    /// One row per record. Columns: id, patient, dataset, sex, age (years, null when unknown), view, then one
    /// Int32 column per CheXpert observation named as in <see cref="Observations.Names"/> holding the code
    /// 1 / 0 / -1, or null when not mentioned; then report (the full text, or findings + impression) and image (the path,
    /// or the in-memory source's name).
    /// </summary>
    public static DataFrame ToDataFrame(this CxrDataset dataset)
    {
        var cols = new List<DataFrameColumn>
        {
            new StringDataFrameColumn("id", dataset.Select(r => r.Id)),
            new StringDataFrameColumn("patient", dataset.Select(r => r.PatientId)),
            new StringDataFrameColumn("dataset", dataset.Select(r => r.Dataset)),
            new StringDataFrameColumn("sex", dataset.Select(r => r.Sex)),
            new DoubleDataFrameColumn("age", dataset.Select(r => r.Age)),
            new StringDataFrameColumn("view", dataset.Select(r => r.View)),
        };
        foreach (var o in Observations.All)
            cols.Add(new Int32DataFrameColumn(o.Name(), dataset.Select(r => Code(r.Labels[o]))));
        cols.Add(new StringDataFrameColumn("report", dataset.Select(r => r.Report.IsEmpty ? null : r.Report.Full ?? r.Report.Text)));
        cols.Add(new StringDataFrameColumn("image", dataset.Select(r => r.Image.Description)));
        return new DataFrame(cols);
    }

    private static int? Code(Mention m) => m switch
    {
        Mention.Positive => 1,
        Mention.Negative => 0,
        Mention.Uncertain => -1,
        _ => null,
    };
}
