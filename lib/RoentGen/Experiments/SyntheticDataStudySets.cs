using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Diffusion;
using RoentGen.Platform;
using RoentGen.Synthetic;

namespace RoentGen.Experiments;

/// <summary>
/// The synthetic sources of the study, made from the real training cases of one (size, seed) cell and cached as PNG
/// files with a manifest.json written last (a source whose manifest exists is read back, never regenerated). The manifest
/// is the one <c>roentgen feedback serve --images FOLDER</c> reads (file, id, prompt, positive labels, masks by name; plus
/// "chexpert", the 14 label codes), so a cached source can be rated as it is and the exported ratings name the same ids
/// the study's <c>--ratings</c> filter looks up:
/// <list type="bullet">
/// <item>"text-single": one image per prompt naming a single finding of a training case (the report of that finding alone);</item>
/// <item>"text-report": one image per training case's full report;</item>
/// <item>"mask": one image per transformed condition: a training case's masks with a finding moved, resized, flipped or
/// deformed (<see cref="FindingEdits"/>), its report rewritten to match.</item>
/// </list>
/// </summary>
public static class SyntheticDataStudySets
{
    /// <summary>The manifest file of a cached source.</summary>
    public const string ManifestFile = "manifest.json";

    /// <summary>A training case's findings one at a time: a truth holding only that finding (normal heart otherwise).</summary>
    public static IReadOnlyList<PhantomFindings> SingleFindings(PhantomFindings truth)
    {
        ArgumentNullException.ThrowIfNull(truth);
        var normal = new PhantomFindings { Ctr = Math.Min(truth.Ctr, 0.45) };
        var list = new List<PhantomFindings>();
        if (truth.Cardiomegaly is not null) list.Add(normal with { Ctr = truth.Ctr, Cardiomegaly = truth.Cardiomegaly });
        if (truth.Effusion is not null) list.Add(normal with { Effusion = truth.Effusion });
        if (truth.Pneumothorax is not null) list.Add(normal with { Pneumothorax = truth.Pneumothorax });
        if (truth.Consolidation is not null) list.Add(normal with { Consolidation = truth.Consolidation });
        if (truth.Edema is not null) list.Add(normal with { Edema = truth.Edema });
        if (truth.Lesion is not null) list.Add(normal with { Lesion = truth.Lesion });
        if (truth.Atelectasis is not null) list.Add(normal with { Atelectasis = truth.Atelectasis });
        if (truth.Fracture is not null) list.Add(normal with { Fracture = truth.Fracture });
        if (truth.Devices is not null) list.Add(normal with { Devices = truth.Devices });
        if (list.Count == 0) list.Add(normal);
        return list;
    }

    /// <summary>
    /// The single-disease prompts of a cell: image i names one finding of case i mod N (cycling through that case's
    /// findings), written by <see cref="ReportWriter"/> without hedging; the prompt is its impression, the labels its labels.
    /// </summary>
    public static IReadOnlyList<(string Prompt, CxrLabels Labels)> SingleDiseasePrompts(IReadOnlyList<PhantomCase> cases, int count, long seed)
    {
        var result = new List<(string, CxrLabels)>(count);
        for (int i = 0; i < count; i++)
        {
            var c = cases[i % cases.Count];
            var singles = SingleFindings(c.Truth);
            var truth = singles[(i / cases.Count) % singles.Count];
            var report = ReportWriter.Write(truth, PhantomRandom.Mix((ulong)seed * 7919 + (ulong)i), hedgeProbability: 0);
            result.Add((report.Impression, report.Labels));
        }
        return result;
    }

    /// <summary>
    /// The transformed conditions of a cell: condition i comes from case i mod N: a lesion or consolidation moved by a random
    /// affine inside the lungs, else a one-sided finding flipped, else a finding mask deformed elastically, else the case
    /// unchanged (nothing to edit).
    /// </summary>
    public static IReadOnlyList<MaskCondition> TransformedConditions(IReadOnlyList<PhantomCase> cases, int count, long seed)
    {
        var result = new List<MaskCondition>(count);
        for (int i = 0; i < count; i++)
        {
            var c = MaskCondition.FromCase(cases[i % cases.Count]);
            ulong s = PhantomRandom.Mix((ulong)seed * 104729 + (ulong)i);
            result.Add(Edit(c, s));
        }
        return result;
    }

    private static MaskCondition Edit(MaskCondition c, ulong seed)
    {
        foreach (var name in new[] { "nodule", "mass", "consolidation" })
        {
            if (!c.Masks.TryGetValue(name, out var mask)) continue;
            try { return FindingEdits.Move(c, name, MaskTransforms.RandomAffine(mask, seed), seed); }
            catch (ArgumentException) { /* moved out of the lungs: try the next edit */ }
        }
        foreach (var name in FindingEdits.Flippable)
        {
            if (!c.Masks.ContainsKey(name)) continue;
            try { return FindingEdits.Flip(c, name, seed); }
            catch (ArgumentException) { /* bilateral: try the next edit */ }
        }
        foreach (var name in c.Masks.Keys.Where(k => k is not ("lungs" or "heart")).OrderBy(k => k, StringComparer.Ordinal))
            return FindingEdits.Deform(c, name, new ElasticOptions(), seed);
        return c;
    }

    /// <summary>Reads a cached source, or null when its manifest is missing (not made yet, or interrupted).</summary>
    /// <exception cref="InvalidDataException">A malformed manifest (the message names the file).</exception>
    public static IReadOnlyList<SyntheticImage>? TryLoad(string folder)
    {
        var path = Path.Combine(folder, ManifestFile);
        if (!File.Exists(path)) return null;
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            string source = (string)root["source"]!;
            var list = new List<SyntheticImage>();
            foreach (var e in root["images"]!.AsArray())
            {
                string id = (string)e!["id"]!;
                var codes = e["chexpert"]!.AsArray().Select(v => (string)v!).ToArray();
                var labels = new CxrLabels();
                for (int o = 0; o < codes.Length; o++) labels[(Observation)o] = Observations.ParseCode(codes[o]);
                Dictionary<string, GrayImage>? masks = null;
                if (e["masks"] is JsonObject files)
                {
                    masks = new Dictionary<string, GrayImage>(StringComparer.Ordinal);
                    foreach (var (name, file) in files) masks[name] = ImageIO.Read(Path.Combine(folder, (string)file!));
                }
                list.Add(new SyntheticImage(id, source, ImageIO.Read(Path.Combine(folder, (string)e["file"]!)), labels, masks, (string)e["prompt"]!));
            }
            return list;
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: malformed synthetic-image manifest ({e.Message}); delete the folder to regenerate it", e);
        }
    }

    /// <summary>Writes a source: each image (16-bit PNG) and mask (8-bit PNG), then the manifest (atomically, last).</summary>
    public static void Save(string folder, string source, IReadOnlyList<SyntheticImage> images)
    {
        Directory.CreateDirectory(folder);
        var entries = new JsonArray();
        for (int i = 0; i < images.Count; i++)
        {
            var s = images[i];
            ImageIO.WritePng(Path.Combine(folder, s.Id + ".png"), s.Image, 16);
            if (s.Masks is not null)
                foreach (var (name, mask) in s.Masks) ImageIO.WritePng(Path.Combine(folder, $"{s.Id}.{name}.png"), mask);
            var e = new JsonObject
            {
                ["file"] = s.Id + ".png", ["id"] = s.Id, ["prompt"] = s.Prompt,
                ["labels"] = new JsonArray(s.Labels.Positives.Select(o => (JsonNode)JsonValue.Create(o.Name())!).ToArray()),
                ["chexpert"] = new JsonArray(Observations.All.Select(o => (JsonNode)JsonValue.Create(s.Labels[o].Code())!).ToArray()),
            };
            if (s.Masks is not null)
            {
                var files = new JsonObject();
                foreach (var name in s.Masks.Keys) files[name] = $"{s.Id}.{name}.png";
                e["masks"] = files;
            }
            entries.Add(e);
        }
        var root = new JsonObject { ["source"] = source, ["count"] = images.Count, ["images"] = entries };
        AtomicFile.WriteAllText(Path.Combine(folder, ManifestFile), root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Text-conditioned images: the generator's output for each prompt, resized to <paramref name="size"/>.</summary>
    public static IReadOnlyList<SyntheticImage> FromText(TextToImagePipeline generator, string source, string idPrefix,
        IReadOnlyList<(string Prompt, CxrLabels Labels)> prompts, int size, int steps, double guidance, long seed)
    {
        var request = new SampleRequest
        {
            Prompts = prompts.Select(p => p.Prompt).ToList(), Steps = steps, GuidanceScale = guidance, Seed = seed, BatchSize = 8,
        };
        using var images = generator.Sample(request);                                      // (M, 1, H, W) in [-1, 1]
        var unit = ImageTensors.Unstack(images, -1f, 1f);
        return prompts.Select((p, i) => new SyntheticImage(Id(idPrefix, source, i), source, Fit(unit[i], size, false), p.Labels, null, p.Prompt)).ToList();
    }

    /// <summary>Mask-conditioned images: the generator's output for each condition, with the condition's labels and masks, resized to <paramref name="size"/>.</summary>
    public static IReadOnlyList<SyntheticImage> FromMasks(IMaskConditionedGenerator generator, string idPrefix, IReadOnlyList<MaskCondition> conditions,
        int size, long seed, Action<int, int>? progress = null)
    {
        var images = generator.Generate(conditions, seed, progress);
        if (images.Count != conditions.Count)
            throw new InvalidOperationException($"the mask-conditioned generator returned {images.Count} images for {conditions.Count} conditions");
        return conditions.Select((c, i) => new SyntheticImage(Id(idPrefix, "mask", i), "mask", Fit(images[i], size, false), c.Report.Labels,
            c.Masks.ToDictionary(kv => kv.Key, kv => Fit(kv.Value, size, true), StringComparer.Ordinal),
            LdmTrainingData.PromptOf(c.Report.Impression, c.Report.Findings, PromptSource.ImpressionAndFindings))).ToList();
    }

    /// <summary>A file-safe id, e.g. "n100-s0-mask-0042".</summary>
    public static string Id(string prefix, string source, int i) => string.Create(CultureInfo.InvariantCulture, $"{prefix}-{source}-{i:D4}");

    /// <summary>An image (or binary mask) at <paramref name="size"/> px.</summary>
    public static GrayImage Fit(GrayImage image, int size, bool mask)
    {
        if (image.Width == size && image.Height == size) return image;
        var r = ImageResize.Resize(image, size, size);
        if (mask) for (int i = 0; i < r.Pixels.Length; i++) r.Pixels[i] = r.Pixels[i] >= 0.5f ? 1f : 0f;
        return r;
    }
}
