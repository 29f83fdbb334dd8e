using System.Diagnostics;
using System.Text;
using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Interactive;
using RoentGen.Interactive.Notebooks;
using RoentGen.Platform;

namespace RoentGen.Workflows;

/// <summary>Settings of the main job.</summary>
public sealed record QuickstartOptions
{
    /// <summary>Output folder.</summary>
    public string OutputDir { get; init; } = Path.Combine("data", "generated", "quickstart");
    /// <summary>Phantoms written to disk.</summary>
    public int PhantomCount { get; init; } = 500;
    /// <summary>Phantom image side.</summary>
    public int ImageSize { get; init; } = 128;
    /// <summary>Reports checked for labeler exactness.</summary>
    public int LabelerReports { get; init; } = 5000;
    /// <summary>World seed.</summary>
    public long Seed { get; init; } = 1;
    /// <summary>Folder of the notebooks to execute (null: none).</summary>
    public string? NotebookDir { get; init; }
    /// <summary>
    /// The notebooks the job executes with their default parameters: the quick ones. Training notebooks take
    /// minutes to hours at their defaults; the tests run them at tiny sizes.
    /// </summary>
    public IReadOnlyList<string> Notebooks { get; init; } = ["00-getting-started.ipynb", "01-data-tour.ipynb"];
    /// <summary>The real sample folder (labels.csv, iu_xray_reports_sample.csv), when present.</summary>
    public string? RealSampleDir { get; init; }
}

/// <summary>What the main job measured.</summary>
public sealed record QuickstartResult
{
    /// <summary>The machine.</summary>
    public required DoctorReport Machine { get; init; }
    /// <summary>Phantom generation speed at 128x128.</summary>
    public required double PhantomImagesPerSecond128 { get; init; }
    /// <summary>Phantoms written.</summary>
    public required int PhantomsWritten { get; init; }
    /// <summary>Reports labelled.</summary>
    public required int LabelerReports { get; init; }
    /// <summary>Reports whose 14 labels the labeler recovered exactly.</summary>
    public required int LabelerExact { get; init; }
    /// <summary>Per-finding agreement with the human tags of the real IU reports, when the sample is there.</summary>
    public IReadOnlyList<AgreementRow>? IuAgreement { get; init; }
    /// <summary>Macro F1 over <see cref="IuAgreement"/>.</summary>
    public double? IuMacroF1 { get; init; }
    /// <summary>Executed notebooks and whether each ran clean.</summary>
    public IReadOnlyDictionary<string, bool> Notebooks { get; init; } = new Dictionary<string, bool>();
    /// <summary>Wall time of the whole job.</summary>
    public double Seconds { get; init; }
}

/// <summary>
/// The main job on the built-in data: check the machine, generate and write the phantom world, measure the
/// report labeler, run the notebooks headless, and write report.html and metrics.json. (The diffusion
/// quickstart of the RoentGen issue extends this job.)
/// </summary>
public static class Quickstart
{
    /// <summary>Runs the job; every output goes under <see cref="QuickstartOptions.OutputDir"/>.</summary>
    public static async Task<QuickstartResult> RunAsync(QuickstartOptions o, TextWriter? log = null)
    {
        log ??= Console.Out;
        var sw = Stopwatch.StartNew();
        Directory.CreateDirectory(o.OutputDir);

        log.WriteLine("1/5 checking the machine");
        var machine = Doctor.Run(measure: true);
        if (!machine.LibTorchLoaded) throw new InvalidOperationException($"libtorch could not be loaded: {machine.LoadError}");
        AtomicFile.WriteAllText(Path.Combine(o.OutputDir, "doctor.json"), machine.ToJson());

        log.WriteLine("2/5 generating the phantom world");
        var bench = PhantomBenchmark.Run(128, 1000);
        var options = new PhantomOptions { Size = o.ImageSize, Seed = o.Seed };
        var written = PhantomDataset.WriteFolder(Path.Combine(o.OutputDir, "phantoms"), options, o.PhantomCount);
        var generator = new PhantomGenerator(options);
        var sample = generator.Generate(0, Math.Min(400, o.PhantomCount));   // for the gallery and the label chart
        var gallery = DataTour.FindingGallery(sample, perFinding: 4);
        File.WriteAllBytes(Path.Combine(o.OutputDir, "gallery.png"), gallery.ToPng());

        log.WriteLine("3/5 measuring the report labeler");
        var labeler = new ReportLabeler();
        int exact = 0;
        Parallel.For(0, o.LabelerReports, () => 0, (i, _, local) =>
        {
            var (_, report) = generator.GenerateReport(i);
            return labeler.Label(report.Text).Equals(report.Labels) ? local + 1 : local;
        }, local => Interlocked.Add(ref exact, local));
        IReadOnlyList<AgreementRow>? iu = null;
        var iuCsv = o.RealSampleDir is null ? null : Path.Combine(o.RealSampleDir, "iu_xray_reports_sample.csv");
        if (iuCsv is not null && File.Exists(iuCsv)) iu = LabelerAgreement.EvaluateIu(Csv.ReadFile(iuCsv), labeler);

        var notebooks = new Dictionary<string, bool>();
        if (o.NotebookDir is not null)
        {
            log.WriteLine("4/5 running the notebooks headless");
            var nbOut = Path.Combine(o.OutputDir, "notebooks");
            Directory.CreateDirectory(nbOut);
            foreach (var path in o.Notebooks.Select(n => Path.Combine(o.NotebookDir, n)))
            {
                if (!File.Exists(path)) throw new FileNotFoundException($"notebook not found: {path}", path);
                var runner = new NotebookRunner(new NotebookRunOptions { WorkingDirectory = o.NotebookDir });
                var result = await runner.RunFileAsync(path, Path.Combine(nbOut, Path.GetFileName(path)));
                notebooks[Path.GetFileName(path)] = !result.AnyFailed;
                log.WriteLine($"   {Path.GetFileName(path)}: {(result.AnyFailed ? "FAILED" : "ok")}");
            }
        }

        log.WriteLine("5/5 writing the report");
        var res = new QuickstartResult
        {
            Machine = machine,
            PhantomImagesPerSecond128 = bench.ImagesPerSecond,
            PhantomsWritten = written.Count,
            LabelerReports = o.LabelerReports,
            LabelerExact = exact,
            IuAgreement = iu,
            IuMacroF1 = iu is null ? null : LabelerAgreement.MacroF1(iu),
            Notebooks = notebooks,
            Seconds = sw.Elapsed.TotalSeconds,
        };
        AtomicFile.WriteAllText(Path.Combine(o.OutputDir, "metrics.json"), JsonSerializer.Serialize(res, new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(o.OutputDir, "report.html"), ReportHtml(res, gallery, sample));
        return res;
    }

    private static string ReportHtml(QuickstartResult r, ImageGrid gallery, IReadOnlyList<PhantomCase> sample)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>RoentGen quickstart</title>")
          .Append("<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:2px 8px;text-align:left}</style></head><body>")
          .Append("<h1>RoentGen.Notebooks quickstart</h1>")
          .Append($"<p>Finished in {r.Seconds:F0} s.</p><h2>Machine</h2>").Append(Display.ToHtml(r.Machine.ToDataFrame()))
          .Append("<h2>The phantom world</h2>")
          .Append($"<p>{r.PhantomsWritten} phantoms written; generation speed {r.PhantomImagesPerSecond128:F0} images/s at 128x128 on {Environment.ProcessorCount} cores.</p>")
          .Append(Display.ImageTag(gallery.ToPng(), "gallery"))
          .Append(Display.ToHtml(DataTour.LabelChart(sample.Select(c => c.Labels).ToList())))
          .Append("<h2>Report labeler</h2>")
          .Append($"<p>Recovers the generator's labels exactly (all 14 observations) on {r.LabelerExact} of {r.LabelerReports} generated reports.</p>");
        if (r.IuAgreement is { } iu)
        {
            sb.Append($"<p>Agreement with the human MeSH tags of {iu[0].Total} real IU reports (measured on the sample its rules were written against): macro F1 {r.IuMacroF1:F3}.</p>")
              .Append("<table><tr><th>finding</th><th>tagged</th><th>precision</th><th>recall</th><th>F1</th></tr>");
            foreach (var row in iu)
                sb.Append($"<tr><td>{row.Finding}</td><td>{row.ReferencePositives}</td><td>{row.Precision:F3}</td><td>{row.Recall:F3}</td><td>{row.F1:F3}</td></tr>");
            sb.Append("</table>");
        }
        if (r.Notebooks.Count > 0)
        {
            sb.Append("<h2>Notebooks</h2><ul>");
            foreach (var (name, ok) in r.Notebooks) sb.Append($"<li>notebooks/{name}: {(ok ? "ran clean" : "FAILED")}</li>");
            sb.Append("</ul>");
        }
        return sb.Append("</body></html>").ToString();
    }
}
