using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Synthetic;

namespace RoentGen.Diffusion;

/// <summary>
/// Sets of conditions for mask-conditioned generation: new conditions made from phantom cases by one random geometric
/// edit of a finding each (<see cref="FindingEdits"/>: affine move, shift, resize, elastic deformation or flip to the
/// other side, with truth and report changed to match), and a folder format that holds them: masks/ (one PNG per mask)
/// and labels.csv (id, labels, findings, impression, edits, truth as JSON, and one column per mask name with its PNG).
/// </summary>
public static class MaskConditionSets
{
    /// <summary>The table's file name.</summary>
    public const string TableFile = "labels.csv";
    /// <summary>The masks' subfolder.</summary>
    public const string MasksFolder = "masks";
    /// <summary>The edit kinds <see cref="RandomEdit"/> draws from.</summary>
    public static IReadOnlyList<string> EditKinds { get; } = ["affine", "move", "resize", "elastic", "flip"];

    private static readonly string[] Movable = ["nodule", "mass", "consolidation"];

    /// <summary>
    /// One random edit of one of the condition's findings (a kind of <see cref="EditKinds"/> that the finding allows,
    /// drawn from <paramref name="seed"/>; an edit the finding refuses is replaced by another), or null when the condition
    /// has no finding mask that can be edited.
    /// </summary>
    public static MaskCondition? RandomEdit(MaskCondition condition, ulong seed)
    {
        var rng = new Random((int)(seed & 0x7fffffff));
        var findings = condition.Masks.Keys.Where(k => k != "lungs" && k != "heart").OrderBy(k => k, StringComparer.Ordinal).ToList();
        foreach (var finding in findings.OrderBy(_ => rng.Next()))
        {
            var kinds = new List<string>();
            if (Movable.Contains(finding)) kinds.AddRange(["affine", "move", "resize"]);
            if (FindingEdits.Flippable.Contains(finding)) kinds.Add("flip");
            kinds.Add("elastic");
            foreach (var kind in kinds.OrderBy(_ => rng.Next()))
            {
                try
                {
                    var mask = condition.Masks[finding];
                    return kind switch
                    {
                        "affine" => FindingEdits.Move(condition, finding, MaskTransforms.RandomAffine(mask, seed), seed),
                        "move" => FindingEdits.Move(condition, finding, new MaskAffine(
                            (rng.NextDouble() * 2 - 1) * 0.1 * mask.Width, (rng.NextDouble() * 2 - 1) * 0.1 * mask.Height), seed),
                        "resize" => FindingEdits.Resize(condition, finding, Math.Exp((rng.NextDouble() * 2 - 1) * Math.Log(1.4)), seed),
                        "flip" => FindingEdits.Flip(condition, finding, seed),
                        _ => FindingEdits.Deform(condition, finding, new ElasticOptions(Alpha: 150.0 * mask.Width / 128, Sigma: 8.0 * mask.Width / 128), seed),
                    };
                }
                catch (ArgumentException)
                {
                    // this finding refuses this edit (e.g. a bilateral effusion cannot flip): try the next
                }
            }
        }
        return null;
    }

    /// <summary>
    /// <paramref name="count"/> transformed conditions from phantom cases of world <paramref name="worldSeed"/> drawn at
    /// <paramref name="size"/> px, from case <paramref name="start"/> on: each case with an editable finding gives one
    /// edited condition (cases without one are passed over, up to 50 cases per condition).
    /// </summary>
    /// <exception cref="InvalidOperationException">Too few cases had an editable finding.</exception>
    public static IReadOnlyList<MaskCondition> Transformed(int count, int size, long worldSeed, int start, ulong seed, Action<int, int>? progress = null)
    {
        var world = new PhantomGenerator(new PhantomOptions { Size = size, Seed = worldSeed });
        var result = new List<MaskCondition>();
        for (int i = start; result.Count < count; i++)
        {
            if (i - start > 50L * count + 100)
                throw new InvalidOperationException($"only {result.Count} of {count} phantom cases from {start} to {i} had a finding that can be edited");
            var edited = RandomEdit(MaskCondition.FromCase(world.Generate(i)), seed + (ulong)i);
            if (edited is null) continue;
            result.Add(edited);
            progress?.Invoke(result.Count, count);
        }
        return result;
    }

    /// <summary>Writes conditions into <paramref name="dir"/>: masks/NNNNN_NAME.png and labels.csv (written last).</summary>
    public static void Write(string dir, IReadOnlyList<MaskCondition> conditions)
    {
        Directory.CreateDirectory(Path.Combine(dir, MasksFolder));
        var names = conditions.SelectMany(c => c.Masks.Keys).Distinct().OrderBy(n => MaskOrder(n)).ThenBy(n => n, StringComparer.Ordinal).ToList();
        var header = new List<string> { "id", "labels", "findings", "impression", "edits", "truth", "masks" };
        header.AddRange(names.Select(n => $"mask_{n}"));
        var rows = new List<IReadOnlyList<string?>>();
        for (int i = 0; i < conditions.Count; i++)
        {
            var c = conditions[i];
            var row = new List<string?>
            {
                c.Id, string.Join("|", c.Report.Labels.Positives.Select(o => o.Name())), c.Report.Findings, c.Report.Impression,
                string.Join(" | ", c.Edits), JsonSerializer.Serialize(c.Truth, SafeTensors.ConfigJsonOptions), string.Join("|", c.Masks.Keys.OrderBy(MaskOrder)),
            };
            foreach (var name in names)
            {
                if (!c.Masks.TryGetValue(name, out var mask)) { row.Add(""); continue; }
                var rel = $"{MasksFolder}/{i:D5}_{name}.png";
                AtomicFile.WriteAllBytes(Path.Combine(dir, rel), mask.ToPng());
                row.Add(rel);
            }
            rows.Add(row);
        }
        var csv = new StringWriter();
        Csv.Write(csv, header, rows);
        AtomicFile.WriteAllText(Path.Combine(dir, TableFile), csv.ToString());
    }

    /// <summary>Reads conditions written by <see cref="Write"/> (labels read again from the report by <see cref="ReportLabeler"/>).</summary>
    /// <exception cref="FileNotFoundException">No labels.csv in the folder.</exception>
    /// <exception cref="InvalidDataException">A row is malformed; the message names the file, line and column.</exception>
    public static IReadOnlyList<MaskCondition> Read(string dir)
    {
        var path = Path.Combine(dir, TableFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{dir} holds no conditions: no {TableFile} (write some with 'roentgen masks transform --out {dir}')", path);
        var table = Csv.ReadFile(path);
        table.RequireColumns("id", "findings", "impression", "truth");
        var labeler = new ReportLabeler();
        var result = new List<MaskCondition>();
        foreach (var row in table.Rows)
        {
            var masks = new Dictionary<string, GrayImage>();
            foreach (var column in table.Header.Where(h => h.StartsWith("mask_", StringComparison.Ordinal)))
            {
                var rel = row[column];
                if (rel.Length == 0) continue;
                var file = Path.GetFullPath(Path.Combine(dir, rel));
                if (!file.StartsWith(Path.GetFullPath(dir), StringComparison.Ordinal))
                    throw new InvalidDataException($"{path} line {row.LineNumber}: {column} = {rel} leads outside {dir}");
                masks[column["mask_".Length..]] = ImageIO.Read(file);
            }
            PhantomFindings truth;
            try { truth = JsonSerializer.Deserialize<PhantomFindings>(row["truth"], SafeTensors.ConfigJsonOptions) ?? throw new InvalidDataException("empty"); }
            catch (Exception e) when (e is JsonException or InvalidDataException)
            {
                throw new InvalidDataException($"{path} line {row.LineNumber}: column truth is not a phantom truth JSON: {e.Message}", e);
            }
            string findings = row["findings"], impression = row["impression"];
            result.Add(new MaskCondition
            {
                Id = row["id"], Masks = masks, Truth = truth,
                Report = new WrittenReport(findings, impression, labeler.Label($"FINDINGS: {findings}\nIMPRESSION: {impression}")),
                Edits = (row.Get("edits") ?? "").Split(" | ", StringSplitOptions.RemoveEmptyEntries),
            });
        }
        return result;
    }

    /// <summary>
    /// A grid with one cell per condition: its image (generated, or the lungs and heart in grey when
    /// <paramref name="images"/> is null) with the condition's first finding mask (else the lungs) overlaid in that
    /// finding's colour, captioned with the edit (or the id).
    /// </summary>
    public static RoentGen.Visualization.ImageGrid Overlays(IReadOnlyList<MaskCondition> conditions, IReadOnlyList<GrayImage>? images = null, int columns = 4, string? title = null)
    {
        var grid = new RoentGen.Visualization.ImageGrid(columns, title);
        for (int i = 0; i < conditions.Count; i++)
        {
            var c = conditions[i];
            var lungs = c.Masks.TryGetValue("lungs", out var l) ? l : c.Masks.Values.First();
            GrayImage background;
            if (images is not null) background = images[i];
            else
            {
                background = new GrayImage(lungs.Width, lungs.Height);
                for (int p = 0; p < background.Pixels.Length; p++)
                    background.Pixels[p] = 0.15f + 0.35f * lungs.Pixels[p] + (c.Masks.TryGetValue("heart", out var h) ? 0.5f * h.Pixels[p] : 0);
            }
            var name = c.Masks.Keys.Where(k => k is not ("lungs" or "heart")).OrderBy(MaskOrder).FirstOrDefault() ?? "lungs";
            var mask = c.Masks[name];
            if (mask.Width != background.Width) mask = RoentGen.Data.Datasets.ImageResize.ToSquare(mask, background.Width, isMask: true);
            grid.AddWithMask(background, mask, c.Edits.Count > 0 ? c.Edits[^1] : $"{c.Id}: {name}", DataTour.MaskColor(name), 0.45f);
        }
        return grid;
    }

    /// <summary>One row per condition: id, edits, positive labels and the impression.</summary>
    public static Microsoft.Data.Analysis.DataFrame Table(IReadOnlyList<MaskCondition> conditions) => new(
        new Microsoft.Data.Analysis.StringDataFrameColumn("id", conditions.Select(c => c.Id)),
        new Microsoft.Data.Analysis.StringDataFrameColumn("edits", conditions.Select(c => string.Join("; ", c.Edits))),
        new Microsoft.Data.Analysis.StringDataFrameColumn("labels", conditions.Select(c => string.Join(", ", c.Report.Labels.Positives.Select(o => o.Name())))),
        new Microsoft.Data.Analysis.StringDataFrameColumn("impression", conditions.Select(c => c.Report.Impression)));

    private static int MaskOrder(string name)
    {
        int i = MaskConditioningConfig.PhantomMaskNames.ToList().IndexOf(name);
        return i < 0 ? int.MaxValue : i;
    }
}
