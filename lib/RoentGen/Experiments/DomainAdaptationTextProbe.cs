using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Diffusion;
using RoentGen.Evaluation.Probes;
using RoentGen.Text;
using static TorchSharp.torch;

namespace RoentGen.Experiments;

/// <summary>Report texts with their 14 CheXpert observations as binary positives, the text-encoder probe's data.</summary>
/// <param name="Name">Where the reports came from.</param>
/// <param name="Texts">One text per report.</param>
/// <param name="Labels">(N, 14): 1 where the observation is positive, in <see cref="Observations.All"/> order.</param>
public sealed record LabelledReports(string Name, IReadOnlyList<string> Texts, float[,] Labels)
{
    /// <summary>Number of reports.</summary>
    public int Count => Texts.Count;

    /// <summary>Reports whose label is positive for an observation.</summary>
    public int Positives(Observation o) => Enumerable.Range(0, Count).Count(i => Labels[i, (int)o] > 0.5f);

    /// <summary>
    /// Phantom reports 0..count−1 of world <paramref name="worldSeed"/> (their true findings as labels), each written as a
    /// training prompt of <paramref name="source"/> in the wording <paramref name="style"/> (so the encoder sees text in
    /// the form it was trained on; the full findings with their negations, or the varied wording, make the probe harder
    /// than the templates' impression and positive findings, whose words alone give the findings away).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than 10 reports.</exception>
    public static LabelledReports Phantoms(int count, long worldSeed, PromptSource source = PromptSource.ImpressionAndFindings, ReportStyle style = ReportStyle.Templates)
    {
        if (count < 10) throw new ArgumentOutOfRangeException(nameof(count), count, "the text probe needs at least 10 reports (train, validation and test)");
        var generator = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = worldSeed, ReportStyle = style });
        var texts = new string[count];
        var labels = new CxrLabels[count];
        Parallel.For(0, count, i =>
        {
            var (_, report) = generator.GenerateReport(i);
            texts[i] = LdmTrainingData.PromptOf(report.Impression, report.Findings, source).Trim();
            labels[i] = report.Labels;
        });
        var wording = (style == ReportStyle.Varied ? ", varied wording" : "") + source switch
        {
            PromptSource.ImpressionAndFindings => "",                       // the adaptation study's form, its name unchanged
            PromptSource.Impression => ", impression only",
            _ => ", impression and positive findings",
        };
        return new LabelledReports($"phantom reports (world {worldSeed}, n={count}{wording})", texts, Matrix(labels));
    }

    /// <summary>
    /// The real Indiana University reports of a CSV (columns findings and impression, as in the shared real-data
    /// sample's iu_xray_reports_sample.csv), labelled by <paramref name="labeler"/> (uncertain mentions count as
    /// negative: only what a report states as present is a positive). Null when the file does not exist.
    /// </summary>
    /// <exception cref="InvalidDataException">The CSV lacks a findings or impression column (named), or holds fewer than 10 reports with text.</exception>
    public static LabelledReports? IuReports(string csvPath, ReportLabeler? labeler = null)
    {
        if (!File.Exists(csvPath)) return null;
        labeler ??= new ReportLabeler();
        var table = Csv.ReadFile(csvPath);
        var texts = new List<string>();
        foreach (var row in table.Rows)
        {
            var findings = row.Get("findings") ?? throw new InvalidDataException($"{csvPath}: no 'findings' column; expected the IU reports' columns (findings, impression)");
            var impression = row.Get("impression") ?? throw new InvalidDataException($"{csvPath}: no 'impression' column; expected the IU reports' columns (findings, impression)");
            var text = LdmTrainingData.PromptOf(impression.Trim(), findings.Trim(), PromptSource.ImpressionAndFindings).Trim();
            if (text.Length > 0) texts.Add(text);
        }
        if (texts.Count < 10) throw new InvalidDataException($"{csvPath}: {texts.Count} reports with text; the text probe needs at least 10");
        return new LabelledReports($"IU reports ({Path.GetFileName(csvPath)}, n={texts.Count}, labelled by the report labeler)", texts,
            Matrix(texts.Select(labeler.Label).ToList()));
    }

    /// <summary>
    /// The paraphrase prompts (<see cref="Evaluation.ParaphrasePrompts"/>: each finding in words written apart from the
    /// report writer, synonyms, abbreviations, hedges, plus normal studies), labelled with the findings each names.
    /// </summary>
    public static LabelledReports Paraphrases()
    {
        var prompts = Evaluation.ParaphrasePrompts.All;
        var m = new float[prompts.Count, Observations.All.Count];
        for (int i = 0; i < prompts.Count; i++)
            foreach (var o in prompts[i].Findings) m[i, (int)o] = 1f;
        return new LabelledReports($"paraphrase prompts (n={prompts.Count}, written apart from the report writer)", prompts.Select(p => p.Text).ToList(), m);
    }

    private static float[,] Matrix(IReadOnlyList<CxrLabels> labels)
    {
        var m = new float[labels.Count, Observations.All.Count];
        for (int i = 0; i < labels.Count; i++)
            foreach (var o in Observations.All) m[i, (int)o] = labels[i].Has(o) ? 1f : 0f;
        return m;
    }
}

/// <summary>Settings of the text-encoder probe.</summary>
public sealed record TextProbeOptions
{
    /// <summary>The linear probe's grid and steps.</summary>
    public LinearProbeOptions Linear { get; init; } = LinearProbeOptions.Quick;
    /// <summary>k of the k-NN probe.</summary>
    public int KnnK { get; init; } = 20;
    /// <summary>Vote temperature of the k-NN probe.</summary>
    public double KnnTemperature { get; init; } = 0.07;
    /// <summary>Seed of the 60/20/20 split of the reports into probe train, validation and test.</summary>
    public int SplitSeed { get; init; }
}

/// <summary>One finding's held-out AUCs from the text embeddings.</summary>
/// <param name="Finding">CheXpert name.</param>
/// <param name="LinearAuc">Test AUC of the linear probe (NaN when train or test lacks a class).</param>
/// <param name="KnnAuc">Test AUC of the k-NN probe (NaN likewise).</param>
/// <param name="TestPositives">Positive test reports.</param>
/// <param name="TestCount">Test reports.</param>
public sealed record FindingProbeAuc(string Finding, double LinearAuc, double KnnAuc, int TestPositives, int TestCount);

/// <summary>What the probes read from one text encoder's embeddings of one report set.</summary>
/// <param name="Encoder">Which encoder (e.g. "foundation", "unet+text").</param>
/// <param name="Reports">Which reports.</param>
/// <param name="LinearMacroAuc">Mean linear-probe AUC over the scored findings.</param>
/// <param name="KnnMacroAuc">Mean k-NN AUC over the scored findings.</param>
/// <param name="Findings">Per finding, pneumothorax first.</param>
public sealed record TextProbeResult(string Encoder, string Reports, double LinearMacroAuc, double KnnMacroAuc, IReadOnlyList<FindingProbeAuc> Findings)
{
    /// <summary>The row of one finding (CheXpert name).</summary>
    /// <exception cref="KeyNotFoundException">No such finding.</exception>
    public FindingProbeAuc this[string finding] => Findings.FirstOrDefault(f => f.Finding == finding)
        ?? throw new KeyNotFoundException($"no finding '{finding}' in the text probe of {Encoder} (have: {string.Join(", ", Findings.Select(f => f.Finding))})");
}

/// <summary>
/// What a text encoder knows about findings: report embeddings (the pooled output, the end token's hidden state, as
/// CLIP pools) probed per finding by a linear probe (<see cref="LinearProbe"/>, grid chosen on validation) and a k-NN
/// probe (<see cref="KnnProbe"/>), with held-out AUCs. RoentGen (Chambon et al. 2022) compares the text encoder before
/// and after fine-tuning this way, headlining pneumothorax.
/// </summary>
public static class TextEncoderProbe
{
    /// <summary>The findings in table order: pneumothorax first, then the rest in CheXpert order.</summary>
    public static IReadOnlyList<Observation> FindingOrder { get; } =
        new[] { Observation.Pneumothorax }.Concat(Observations.All.Where(o => o != Observation.Pneumothorax)).ToArray();

    /// <summary>Pooled embeddings (N, D) of texts, computed without gradients in batches.</summary>
    public static Tensor Embed(BpeTokenizer tokenizer, ClipTextModel encoder, IReadOnlyList<string> texts, int maxTokens, int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(encoder);
        if (texts.Count == 0) throw new ArgumentException("no texts to embed", nameof(texts));
        using var _ = no_grad();
        bool wasTraining = encoder.training;
        encoder.eval();
        var parts = new List<Tensor>();
        for (int i = 0; i < texts.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var ids = tokenizer.EncodeBatch(texts.Skip(i).Take(batchSize).ToList(), maxTokens).Ids;   // (b, L)
            parts.Add(encoder.Encode(ids).Pooled.to(ScalarType.Float32).MoveToOuterDisposeScope());     // (b, D)
        }
        if (wasTraining) encoder.train();
        var all = cat(parts, 0);                                                                        // (N, D)
        foreach (var p in parts) p.Dispose();
        return all;
    }

    /// <summary>The embeddings of a model's text encoder (with its tokenizer and token length).</summary>
    public static Tensor Embed(LatentDiffusionModel model, IReadOnlyList<string> texts) => Embed(model.Tokenizer, model.TextEncoder, texts, model.MaxTokens);

    /// <summary>
    /// Probes embeddings of <paramref name="reports"/> (one row per report): the reports are split 60/20/20 (shuffled with
    /// <see cref="TextProbeOptions.SplitSeed"/>, stratified by pneumothorax) into probe train, validation and test; the linear probe is fit on train,
    /// its grid point chosen on validation; the k-NN probe votes from train; both are scored on test.
    /// </summary>
    /// <exception cref="ArgumentException">The embeddings are not (reports, D).</exception>
    public static TextProbeResult Run(Tensor embeddings, LabelledReports reports, string encoder, TextProbeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(reports);
        var o = options ?? new TextProbeOptions();
        CheckRows(embeddings, reports);
        var parts = Split(reports, o.SplitSeed, 0.6, 0.2);
        if (parts.Any(p => p.Length == 0))
            throw new ArgumentException($"{reports.Name}: {reports.Count} reports leave a probe part empty (train {parts[0].Length}, validation {parts[1].Length}, test {parts[2].Length})", nameof(reports));
        return Score(encoder, reports.Name, o, (embeddings, reports, parts[0]), (embeddings, reports, parts[1]), (embeddings, reports, parts[2]));
    }

    /// <summary>
    /// The probe across wordings: fit on <paramref name="trainReports"/> (split 80/20 into probe train and validation, as
    /// <see cref="Run"/> stratified by pneumothorax) and scored on every one of <paramref name="testReports"/>, e.g. the
    /// writer's reports against prompts written apart from the writer (<see cref="LabelledReports.Paraphrases"/>). A probe
    /// on one wording reads whatever tokens mark a finding there, so even an encoder that learned nothing about findings
    /// scores high within it; across wordings it scores high only if the encoder puts "PTX", "collapsed lung" and
    /// "pneumothorax" near each other.
    /// </summary>
    /// <exception cref="ArgumentException">Embeddings that do not match their reports, or too few training reports.</exception>
    public static TextProbeResult Transfer(Tensor trainEmbeddings, LabelledReports trainReports, Tensor testEmbeddings, LabelledReports testReports,
        string encoder, TextProbeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(trainReports);
        ArgumentNullException.ThrowIfNull(testReports);
        var o = options ?? new TextProbeOptions();
        CheckRows(trainEmbeddings, trainReports);
        CheckRows(testEmbeddings, testReports);
        var parts = Split(trainReports, o.SplitSeed, 0.8, 0.2);
        if (parts[0].Length == 0 || parts[1].Length == 0)
            throw new ArgumentException($"{trainReports.Name}: {trainReports.Count} reports leave a probe part empty (train {parts[0].Length}, validation {parts[1].Length})", nameof(trainReports));
        return Score(encoder, $"{testReports.Name}, probe fit on {trainReports.Name}", o, (trainEmbeddings, trainReports, parts[0]), (trainEmbeddings, trainReports, parts[1]),
            (testEmbeddings, testReports, Enumerable.Range(0, testReports.Count).ToArray()));
    }

    private static void CheckRows(Tensor embeddings, LabelledReports reports)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(reports);
        if (embeddings.dim() != 2 || embeddings.shape[0] != reports.Count)
            throw new ArgumentException($"embeddings have shape [{string.Join(", ", embeddings.shape)}]; expected ({reports.Count}, D), one row per report of {reports.Name}", nameof(embeddings));
    }

    // Shuffled parts of the given fractions (the rest goes to the last part), stratified by pneumothorax, the headline
    // finding, so its few positives (e.g. in real reports) reach every part.
    private static int[][] Split(LabelledReports reports, int seed, double trainFraction, double valFraction)
    {
        var random = new Random(seed);
        var parts = new[] { new List<int>(), new List<int>(), new List<int>() };
        foreach (bool positive in new[] { true, false })
        {
            var group = Enumerable.Range(0, reports.Count).Where(i => reports.Labels[i, (int)Observation.Pneumothorax] > 0.5f == positive).ToArray();
            random.Shuffle(group);
            int nTrain = (int)Math.Round(group.Length * trainFraction), nVal = (int)Math.Round(group.Length * valFraction);
            nVal = Math.Min(nVal, group.Length - nTrain);
            parts[0].AddRange(group.Take(nTrain));
            parts[1].AddRange(group.Skip(nTrain).Take(nVal));
            parts[2].AddRange(group.Skip(nTrain + nVal));
        }
        return parts.Select(p => p.ToArray()).ToArray();
    }

    private static TextProbeResult Score(string encoder, string name, TextProbeOptions o,
        (Tensor X, LabelledReports Reports, int[] Rows) train, (Tensor X, LabelledReports Reports, int[] Rows) val, (Tensor X, LabelledReports Reports, int[] Rows) test)
    {
        var names = FindingOrder.Select(Observations.Name).ToList();
        float[,] Y((Tensor X, LabelledReports Reports, int[] Rows) part)
        {
            var y = new float[part.Rows.Length, names.Count];
            for (int i = 0; i < part.Rows.Length; i++)
                for (int j = 0; j < names.Count; j++) y[i, j] = part.Reports.Labels[part.Rows[i], (int)FindingOrder[j]];
            return y;
        }
        using var scope = NewDisposeScope();
        Tensor X((Tensor X, LabelledReports Reports, int[] Rows) part) =>
            part.X.to(ScalarType.Float32).index_select(0, tensor(part.Rows.Select(r => (long)r).ToArray()));
        var linear = LinearProbe.TrainMultiLabel(X(train), Y(train), X(val), Y(val), X(test), Y(test), names, o.Linear);
        var knn = KnnProbe.Evaluate(X(train), Y(train), X(test), Y(test), names, o.KnnK, o.KnnTemperature);
        var rows = names.Select((n, j) => new FindingProbeAuc(n, linear.PerLabel[j].Auc, knn.PerLabel[j].Auc, linear.PerLabel[j].TestPositives, linear.PerLabel[j].TestCount)).ToList();
        return new TextProbeResult(encoder, name, linear.MacroAuc, knn.MacroAuc, rows);
    }
}

/// <summary>
/// The text-encoder probe of several models side by side (<c>roentgen text-probe</c>): every encoder on every report set,
/// and each encoder's relative change over the first one (the baseline, e.g. the foundation model before fine-tuning),
/// as RoentGen (Chambon et al. 2022) reports its fine-tuned text encoder's pneumothorax representation against the
/// original's. One split of the reports: no interval, so give enough reports for the pneumothorax test positives
/// (<see cref="FindingProbeAuc.TestPositives"/>) to mean something.
/// </summary>
/// <param name="Baseline">Name of the encoder the changes are relative to.</param>
/// <param name="Rows">One row per report set and encoder, in that order.</param>
public sealed record TextProbeComparison(string Baseline, IReadOnlyList<TextProbeRow> Rows)
{
    /// <summary>
    /// Probes every encoder on every report set (<see cref="TextEncoderProbe.Run"/>, one split per report set shared by the
    /// encoders, so their AUCs are on the same test reports).
    /// </summary>
    /// <param name="encoders">Name, seed (null when there is none) and model of each encoder; the first is the baseline.</param>
    /// <param name="reportSets">The labelled reports.</param>
    /// <param name="options">The probe's settings.</param>
    /// <param name="log">Receives one line per probed encoder.</param>
    /// <param name="transferTest">Also probe across wordings (<see cref="TextEncoderProbe.Transfer"/>): fit on the first report
    /// set, scored on these (e.g. <see cref="LabelledReports.Paraphrases"/>); null: not.</param>
    /// <exception cref="ArgumentException">No encoder, a repeated name, or no report set.</exception>
    public static TextProbeComparison Run(IReadOnlyList<(string Name, long? Seed, LatentDiffusionModel Model)> encoders,
        IReadOnlyList<LabelledReports> reportSets, TextProbeOptions? options = null, Action<string>? log = null, LabelledReports? transferTest = null)
    {
        ArgumentNullException.ThrowIfNull(encoders);
        ArgumentNullException.ThrowIfNull(reportSets);
        if (encoders.Count == 0) throw new ArgumentException("give at least one text encoder to probe", nameof(encoders));
        if (reportSets.Count == 0) throw new ArgumentException("give at least one report set", nameof(reportSets));
        var repeated = encoders.GroupBy(e => (e.Name, e.Seed)).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null) throw new ArgumentException($"encoder '{repeated.Key.Name}' is given twice; give each a name of its own", nameof(encoders));
        var rows = new List<TextProbeRow>();
        void Add(string name, long? seed, TextProbeResult r)
        {
            rows.Add(new TextProbeRow(name, seed, r.Reports, r));
            log?.Invoke(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{name}{(seed is { } s ? $" (seed {s})" : "")} on {r.Reports}: pneumothorax linear AUC {r["Pneumothorax"].LinearAuc:F3}, k-NN {r["Pneumothorax"].KnnAuc:F3}; macro linear {r.LinearMacroAuc:F3}, k-NN {r.KnnMacroAuc:F3}"));
        }
        // The transfer probe is fit on the first report set: scored while that set's embeddings are at hand, its rows added last.
        var transfers = new List<(string Name, long? Seed, TextProbeResult Result)>();
        foreach (var reports in reportSets)
            foreach (var (name, seed, model) in encoders)
            {
                using var scope = NewDisposeScope();
                var embeddings = TextEncoderProbe.Embed(model, reports.Texts);
                Add(name, seed, TextEncoderProbe.Run(embeddings, reports, name, options));
                if (transferTest is not null && ReferenceEquals(reports, reportSets[0]))
                    transfers.Add((name, seed, TextEncoderProbe.Transfer(embeddings, reports, TextEncoderProbe.Embed(model, transferTest.Texts), transferTest, name, options)));
            }
        foreach (var (name, seed, result) in transfers) Add(name, seed, result);
        return new TextProbeComparison(encoders[0].Name, rows);
    }

    /// <summary>
    /// Relative change (after / before − 1) of a measure from the baseline encoder to <paramref name="row"/>'s, on its
    /// report set; <paramref name="measure"/> is "linear" or "knn", of pneumothorax or (<paramref name="macro"/>) the macro AUC.
    /// </summary>
    public double Change(TextProbeRow row, string measure, bool macro = false)
    {
        ArgumentNullException.ThrowIfNull(row);
        var before = Rows.FirstOrDefault(r => r.Encoder == Baseline && r.Reports == row.Reports)?.Result;
        if (before is null) return double.NaN;
        double Of(TextProbeResult r) => (macro, measure) switch
        {
            (true, "linear") => r.LinearMacroAuc,
            (true, "knn") => r.KnnMacroAuc,
            (false, "linear") => r["Pneumothorax"].LinearAuc,
            (false, "knn") => r["Pneumothorax"].KnnAuc,
            _ => throw new ArgumentException($"measure '{measure}': expected linear or knn", nameof(measure)),
        };
        return Of(row.Result) / Of(before) - 1;
    }

    /// <summary>
    /// The table: per report set and encoder, pneumothorax ("ptx") and macro AUCs, the relative changes of the
    /// pneumothorax AUCs over the baseline (after / before − 1), and the pneumothorax positives in the probe's test part.
    /// </summary>
    public Microsoft.Data.Analysis.DataFrame Table()
    {
        double P(TextProbeRow r, bool knn) => knn ? r.Result["Pneumothorax"].KnnAuc : r.Result["Pneumothorax"].LinearAuc;
        return new Microsoft.Data.Analysis.DataFrame(
            new Microsoft.Data.Analysis.StringDataFrameColumn("reports", Rows.Select(r => ShortName(r.Reports))),
            new Microsoft.Data.Analysis.StringDataFrameColumn("encoder", Rows.Select(r => r.Seed is { } s ? $"{r.Encoder} (seed {s})" : r.Encoder)),
            new Microsoft.Data.Analysis.DoubleDataFrameColumn("ptx linear AUC", Rows.Select(r => P(r, false))),
            new Microsoft.Data.Analysis.DoubleDataFrameColumn("ptx k-NN AUC", Rows.Select(r => P(r, true))),
            new Microsoft.Data.Analysis.DoubleDataFrameColumn("macro linear", Rows.Select(r => r.Result.LinearMacroAuc)),
            new Microsoft.Data.Analysis.DoubleDataFrameColumn("macro k-NN", Rows.Select(r => r.Result.KnnMacroAuc)),
            new Microsoft.Data.Analysis.DoubleDataFrameColumn("ptx linear change", Rows.Select(r => Change(r, "linear"))),
            new Microsoft.Data.Analysis.DoubleDataFrameColumn("ptx k-NN change", Rows.Select(r => Change(r, "knn"))),
            new Microsoft.Data.Analysis.Int32DataFrameColumn("ptx test positives", Rows.Select(r => r.Result["Pneumothorax"].TestPositives)));
    }

    /// <summary>A report set's name up to its parenthesis ("phantom reports", "IU reports"), for narrow tables; the JSON keeps the whole name.</summary>
    public static string ShortName(string reports) =>
        (reports.IndexOf(" (", StringComparison.Ordinal) is var i and > 0 ? reports[..i] : reports)
        + (reports.Contains(", probe fit on ", StringComparison.Ordinal) ? " (probe fit on the first set)" : "");

    /// <summary>The comparison as JSON (the same settings as the adaptation study's results).</summary>
    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, DomainAdaptationResult.JsonOptions);

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/> atomically.</summary>
    public void Save(string path) => Platform.AtomicFile.WriteAllText(path, ToJson());
}
