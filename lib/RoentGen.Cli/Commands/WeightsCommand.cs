using System.CommandLine;
using System.Globalization;
using RoentGen.Interop.Diffusers;
using RoentGen.Platform;
using RoentGen.Text;
using Spectre.Console;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen weights ...</c>: real model folders (Stable Diffusion in the diffusers layout): tokenize, inspect, export.</summary>
internal static class WeightsCommand
{
    public static Command Build()
    {
        var cmd = new Command("weights", "Real model folders (Stable Diffusion, diffusers layout): tokenize text with their CLIP tokenizer, inspect configs and weights, export a model trained here.");
        cmd.Subcommands.Add(BuildTokenize());
        cmd.Subcommands.Add(BuildInspect());
        cmd.Subcommands.Add(BuildExport());
        return cmd;
    }

    /// <summary><c>roentgen weights export DIR --out OUT [--dtype float32|float16|bfloat16] [--variant NAME]</c>.</summary>
    private static Command BuildExport()
    {
        var dir = new Argument<string>("dir") { Description = "A trained latent-diffusion folder (roentgen train ldm --out), or a diffusers folder to rewrite." };
        var output = new Option<string>("--out") { Description = "The diffusers folder to write (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/).", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "float32, float16 or bfloat16: the dtype the weights are stored in.", DefaultValueFactory = _ => "float32" };
        var variant = new Option<string?>("--variant") { Description = "Insert a variant into the weight file names (fp16: diffusion_pytorch_model.fp16.safetensors)." };
        var cmd = new Command("export", "Write a model trained here as a diffusers Stable Diffusion folder, which diffusers' from_pretrained and roentgen sample read.") { dir, output, dtype, variant };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var type = parse.GetValue(dtype)!.ToLowerInvariant() switch
            {
                "float32" or "fp32" or "f32" => TorchSharp.torch.ScalarType.Float32,
                "float16" or "fp16" or "f16" => TorchSharp.torch.ScalarType.Float16,
                "bfloat16" or "bf16" => TorchSharp.torch.ScalarType.BFloat16,
                var other => throw new ArgumentException($"--dtype '{other}': expected float32, float16 or bfloat16"),
            };
            var outDir = Path.GetFullPath(parse.GetValue(output)!);
            if (File.Exists(outDir)) throw new ArgumentException($"--out {outDir} is a file; expected a folder");
            var pipe = RoentGen.Diffusion.LatentDiffusionRuns.LoadPipeline(parse.GetValue(dir)!);
            DiffusersPipelineWriter.Save(pipe, outDir, new DiffusersSaveOptions { DType = type, Variant = parse.GetValue(variant) });
            Console.WriteLine($"wrote {Cli.Escape(outDir)}");
        }));
        return cmd;
    }

    /// <summary><c>roentgen weights tokenize DIR --in FILE [--max-length N] [--pad]</c>.</summary>
    private static Command BuildTokenize()
    {
        var dir = new Argument<string>("dir") { Description = "A model folder holding tokenizer/, or a tokenizer folder (vocab.json, merges.txt, ...)." };
        var input = new Option<string>("--in") { Description = "UTF-8 text file, one text per line.", Required = true };
        var maxLength = new Option<int?>("--max-length") { Description = "Cut each text so that start + tokens + end is at most N ids (the end token is kept)." };
        var pad = new Option<bool>("--pad") { Description = "Pad every line to --max-length (or the folder's model_max_length) with the folder's padding token, as the SD pipelines do." };
        var cmd = new Command("tokenize", "Print the CLIP token ids of each line of a file, one JSON array per line, start and end tokens included.") { dir, input, maxLength, pad };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var tok = BpeTokenizer.LoadFolder(parse.GetValue(dir)!);
            var max = parse.GetValue(maxLength);
            if (max is < 2) throw new ArgumentException($"--max-length must be at least 2 (start and end tokens), got {max}");
            int? padTo = null;
            if (parse.GetValue(pad))
                padTo = max ?? tok.ModelMaxLength ?? throw new ArgumentException("--pad needs --max-length: the tokenizer folder gives no model_max_length");
            var text = InputFile.ReadAllTextStrict(parse.GetValue(input)!, what: "--in text file");
            var lines = text.Split('\n');
            int count = text.EndsWith('\n') ? lines.Length - 1 : lines.Length;
            var stdout = Console.Out;
            for (int i = 0; i < count; i++)
            {
                var ids = tok.EncodeWithSpecialTokens(lines[i].TrimEnd('\r'), max ?? padTo);
                IEnumerable<int> row = ids;
                if (padTo is int n && ids.Length < n) row = ids.Concat(Enumerable.Repeat(tok.PadId, n - ids.Length));
                stdout.WriteLine("[" + string.Join(",", row.Select(id => id.ToString(CultureInfo.InvariantCulture))) + "]");
            }
        }));
        return cmd;
    }

    /// <summary><c>roentgen weights inspect DIR [--json FILE]</c>.</summary>
    private static Command BuildInspect()
    {
        var dir = new Argument<string>("dir") { Description = "A diffusers model folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)." };
        var json = new Option<string?>("--json") { Description = "Also write the whole summary as JSON to this file." };
        var cmd = new Command("inspect", "Components, configs, parameter counts (from configs and from safetensors headers), dtypes, unknown config fields, refused pickle files.") { dir, json };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            if (parse.GetValue(json) is { } jsonPath) AtomicFile.EnsureWritable(Path.GetFullPath(jsonPath), "--json");
            var s = DiffusersFolder.Inspect(parse.GetValue(dir)!);
            Print(s);
            if (parse.GetValue(json) is { } path)
            {
                AtomicFile.WriteAllText(path, s.ToJson());
                Console.WriteLine($"wrote {Cli.Escape(path)}");
            }
        }));
        return cmd;
    }

    private static string E(string? s) => Markup.Escape(Cli.Escape(s));

    private static string N(long? n) => n is long v ? v.ToString("N0", CultureInfo.InvariantCulture) : "-";

    private static void Print(DiffusersFolderSummary s)
    {
        Cli.Out.MarkupLine($"[bold]{E(s.Root)}[/]: {E(s.Index.ClassName)}" + (s.Index.DiffusersVersion is { } v ? $" (diffusers {E(v)})" : ""));
        var comps = new Table().AddColumn("component").AddColumn("class").AddColumn("params (config)", c => c.RightAligned())
            .AddColumn("params (weights)", c => c.RightAligned()).AddColumn("dtypes").AddColumn("weight files");
        foreach (var c in s.Components)
        {
            var weightParams = c.WeightFiles.Count == 0 ? null : (long?)c.WeightFiles[0].Parameters;
            var dtypes = string.Join("; ", c.WeightFiles.Select(w => string.Join(", ", w.ElementsByDType.Select(kv => $"{kv.Key} {N(kv.Value)}"))));
            var files = string.Join(", ", c.WeightFiles.Select(w => Path.GetFileName(w.Path) + (w.Shards.Count > 0 ? $" ({w.Shards.Count} shards)" : "")));
            var cls = c.ClassName ?? "(none)";
            if (!c.Read && c.ClassName is not null) cls += c.Folder is null ? " (not read here; folder absent)" : " (not read here)";
            var mismatch = weightParams is long wp && c.ParametersFromConfig is long cp && wp != cp ? " (differs from config)" : "";
            comps.AddRow(E(c.Name), E(cls), N(c.ParametersFromConfig), N(weightParams) + mismatch, E(dtypes.Length == 0 ? "-" : dtypes), E(files.Length == 0 ? "none" : files));
        }
        Cli.Out.Write(comps);

        var cfg = new Table().AddColumn("config").AddColumn("value");
        void Row(string k, string v) => cfg.AddRow(E(k), E(v));
        string L<T>(IEnumerable<T> xs) => string.Join(", ", xs);
        if (s.Unet is { } u)
        {
            Row("unet channels / layers per level", $"{L(u.BlockOutChannels)} / {u.LayersPerBlock}");
            Row("unet heads / head dim per level", $"{L(u.HeadsPerLevel)} / {L(u.HeadDimPerLevel)}");
            Row("unet transformer depth per level", L(u.TransformerLayersPerBlock));
            Row("unet cross-attention dim", u.CrossAttentionDim.ToString(CultureInfo.InvariantCulture));
            Row("unet proj_in/out", u.UseLinearProjection ? "linear (SD 2.x)" : "1x1 conv (SD 1.x)");
            Row("unet upcast attention", u.UpcastAttention ? "yes" : "no");
            Row("unet latent in / out / sample size", $"{u.InChannels} / {u.OutChannels} / {u.SampleSize?.ToString(CultureInfo.InvariantCulture) ?? "-"}");
        }
        if (s.Vae is { } va)
        {
            Row("vae channels in / out / latent", $"{va.InChannels} / {va.OutChannels} / {va.LatentChannels}");
            Row("vae channels per level", L(va.BlockOutChannels));
            Row("vae scaling factor", va.ScalingFactor.ToString("R", CultureInfo.InvariantCulture) + (va.ScalingFactorFromFile ? "" : " (diffusers' default; not in the file)"));
        }
        if (s.TextEncoder is { } t)
        {
            Row("text encoder layers / width / heads", $"{t.NumHiddenLayers} / {t.HiddenSize} / {t.NumAttentionHeads}");
            Row("text encoder activation", t.HiddenAct + (t.UsesQuickGelu ? " (OpenAI CLIP)" : ""));
            Row("text encoder positions / vocabulary", $"{t.MaxPositionEmbeddings} / {t.VocabSize}");
        }
        if (s.Scheduler is { } sc)
        {
            Row("scheduler", sc.ClassName);
            Row("scheduler betas", $"{sc.BetaSchedule} {sc.BetaStart.ToString(CultureInfo.InvariantCulture)} .. {sc.BetaEnd.ToString(CultureInfo.InvariantCulture)} over {sc.NumTrainTimesteps}");
            Row("scheduler prediction / steps offset / alpha to one", $"{sc.PredictionType} / {sc.StepsOffset} / {(sc.SetAlphaToOneOrDefault ? "true" : "false")}{(sc.SetAlphaToOne is null ? " (class default)" : "")}");
            Row("scheduler timestep spacing", sc.TimestepSpacing ?? "leading (default)");
        }
        if (s.Tokenizer is { } tk)
            Row("tokenizer vocabulary / pad id / max length", $"{tk.VocabSize} / {tk.PadId}{(tk.PadId == tk.EndId ? " (end token)" : "")} / {tk.ModelMaxLength?.ToString(CultureInfo.InvariantCulture) ?? "-"}");
        Cli.Out.Write(cfg);

        var unknown = s.Unknown;
        Console.WriteLine(unknown.Count == 0 ? "unknown config fields: none" : $"unknown config fields ({unknown.Count}):");
        foreach (var k in unknown) Console.WriteLine($"  {Cli.Escape(k)}");
        var unsupported = s.Unsupported;
        if (unsupported.Count > 0) Console.WriteLine($"unsupported config values ({unsupported.Count}):");
        foreach (var k in unsupported) Console.WriteLine($"  {Cli.Escape(k)}");
        foreach (var w in s.RootWeightFiles)
            Console.WriteLine(Cli.Escape($"top-level weights {Path.GetFileName(w.Path)}: {N(w.Parameters)} parameters in {w.Tensors} tensors ({string.Join(", ", w.ElementsByDType.Select(kv => $"{kv.Key} {N(kv.Value)}"))}); single-file checkpoints are not read by this version"));
        foreach (var r in s.Refused) Console.WriteLine(Cli.Escape(r));
    }
}
