using RoentGen.Training;
using System.Text;
using RoentGen.Diffusion;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Interop.Diffusers;

/// <summary>
/// Stable Diffusion single-file checkpoints in the original LDM / CompVis key layout, as safetensors
/// (<c>model.diffusion_model.*</c>, <c>first_stage_model.*</c>, <c>cond_stage_model.*</c>; SD 1.x's CLIP or SD 2.x's
/// OpenCLIP text encoder), read through <see cref="LdmKeyMap"/> into this library's models, with configs given beside the
/// file (<see cref="StableDiffusionConfigs"/>: a diffusers folder's configs or a preset). Also writes a pipeline in that
/// layout, and builds a pipeline of random weights at a real model's size (for memory and speed measurements).
/// </summary>
/// <remarks>
/// Strict, as the diffusers loader: every LDM key the map does not know, every weight the models need and the file lacks,
/// every shape that differs (named by both its LDM and its diffusers key) and every non-floating-point weight are listed
/// in one <see cref="DiffusersWeightsMismatchException"/>, before any tensor data is read: the check runs on the file's
/// header. Keys known to hold no weight of the pipeline (schedule buffers, the EMA copy, OpenCLIP's unused layer and
/// projection) are skipped; <see cref="LdmKeyMap"/> lists them. The data is then read one component at a time and copied
/// into models already in the requested dtype (the cast-on-load path), so the file is never held whole beside the models.
/// Pickle files (.ckpt and friends) are refused unopened.
/// </remarks>
public static class SingleFileCheckpoint
{
    /// <summary>Whether a path is a file (a single-file checkpoint, or a pickle file to refuse) rather than a folder.</summary>
    public static bool IsSingleFile(string path) => File.Exists(path);

    /// <summary>Loads a single-file checkpoint with its configs into a pipeline (see the class remarks).</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">A pickle file, not a .safetensors file, a malformed header, configs this library cannot build, or no tokenizer.</exception>
    /// <exception cref="DiffusersWeightsMismatchException">The file's tensors do not match the configs' models (every key listed).</exception>
    public static TextToImagePipeline Load(string file, StableDiffusionConfigs configs, DiffusersLoadOptions? options = null)
    {
        options ??= new DiffusersLoadOptions();
        CheckDType(options);
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: no such checkpoint file", file);
        var ext = Path.GetExtension(file).ToLowerInvariant();
        if (DiffusersFolder.PickleExtensions.Contains(ext))
            throw new InvalidDataException(DiffusersFolder.PickleRefusal(file)
                + " For a single-file checkpoint: where PyTorch is installed, load its state dict (torch.load(path, map_location=\"cpu\", weights_only=True)[\"state_dict\"]) "
                + "and write it with safetensors.torch.save_file(state_dict, \"model.safetensors\"); or use diffusers' from_single_file and save_pretrained to get a folder.");
        if (ext != ".safetensors") throw new InvalidDataException($"{file}: expected a .safetensors single-file checkpoint, got '{ext}'");

        var problems = new List<string>(configs.Unsupported.Select(u => $"{configs.Source}: {u}"));
        if (configs.Tokenizer is null)
            problems.Add($"{configs.Source} has no tokenizer: give a config folder with tokenizer/ (vocab.json, merges.txt), e.g. the model's diffusers folder without weights");
        var tokenizer = configs.Tokenizer ?? BpeTokenizer.Train(["a"], 260);
        var (unetConfig, vaeConfig, textConfig, schedule, latentSize, maxTokens) =
            DiffusersPipelineLoader.ToLibraryConfigs(configs.Unet, configs.Vae, configs.TextEncoder, configs.Scheduler, tokenizer, options, problems);
        if (problems.Count > 0) throw new InvalidDataException($"{file} with {configs.Source}: cannot build this pipeline:{Environment.NewLine}{string.Join(Environment.NewLine, problems)}");

        // 1. The header only: every key mapped, skipped or unmapped, and the shape each diffusers key will have.
        var (infos, _) = SafeTensors.ReadHeader(file);
        var map = new LdmKeyMap(unetConfig, vaeConfig, textConfig);
        var textKind = LdmKeyMap.DetectTextEncoder(infos.Select(i => i.Name)) ?? (textConfig.HiddenAct == "gelu" ? LdmTextEncoderKind.OpenClip : LdmTextEncoderKind.Clip);
        var planned = new Dictionary<string, Dictionary<string, (long[] Shape, string Ldm)>>
        {
            ["unet"] = new(StringComparer.Ordinal), ["vae"] = new(StringComparer.Ordinal), ["text_encoder"] = new(StringComparer.Ordinal),
        };
        var unmapped = new List<string>();
        foreach (var info in infos)
        {
            var decision = map.Map(info.Name);
            if (decision is null) { unmapped.Add($"{info.Name} {StateDict.FormatShape(info.Shape)}"); continue; }
            if (decision.SkipReason is not null) continue;
            if (info.DType is not ("F64" or "F32" or "F16" or "BF16"))
                problems.Add($"'{info.Name}' has dtype {info.DType}; expected a floating-point weight (F16, BF16, F32 or F64)");
            foreach (var target in decision.Targets)
            {
                if (planned[target.Component].TryGetValue(target.Key, out var first))
                    problems.Add($"{target.Component} '{target.Key}' comes from both '{first.Ldm}' and '{info.Name}'");
                else planned[target.Component][target.Key] = (TargetShape(info.Shape, target), info.Name);
            }
        }

        // 2. The models, built in the requested dtype one after the other, checked key by key against the plan.
        var unet = Build(() => new UNet2DConditionModel(unetConfig), options.DType);
        var vae = Build(() => new AutoencoderKL(vaeConfig), options.DType);
        var text = Build(() => new ClipTextModel(textConfig), options.DType);
        var modules = new (string Name, nn.Module Module)[] { ("unet", unet), ("vae", vae), ("text_encoder", text) };
        var reports = new Dictionary<string, StateDictReport>();
        var lines = new List<string>();
        foreach (var (name, module) in modules)
        {
            var expected = module.state_dict();
            var missing = new List<string>();
            var mismatched = new List<ShapeMismatch>();
            var ok = new List<string>();
            foreach (var (key, t) in expected)
            {
                if (!planned[name].TryGetValue(key, out var p))
                {
                    missing.Add(key);
                    lines.Add($"missing: {name} '{key}' {StateDict.FormatShape(t.shape)} (LDM key {LdmKeyOrNone(map, name, key, textKind)})");
                }
                else if (!t.shape.SequenceEqual(p.Shape))
                {
                    mismatched.Add(new ShapeMismatch(key, t.shape, p.Shape));
                    lines.Add($"wrong shape: '{p.Ldm}' → {name} '{key}': expected {StateDict.FormatShape(t.shape)}, found {StateDict.FormatShape(p.Shape)}");
                }
                else ok.Add(key);
            }
            var unexpected = planned[name].Keys.Where(k => !expected.ContainsKey(k)).ToList();
            foreach (var k in unexpected) lines.Add($"unexpected: '{planned[name][k].Ldm}' → {name} '{k}', which the model does not have");
            var report = new StateDictReport(missing, unexpected, mismatched, ok);
            if (!report.IsExact) reports[name] = report;
        }
        if (unmapped.Count > 0 || problems.Count > 0 || lines.Count > 0)
        {
            foreach (var m in modules) m.Module.Dispose();
            var sb = new StringBuilder($"{file}: the tensors do not match the models {configs.Source} describes ({textKind} text encoder):");
            foreach (var p in problems) sb.Append(Environment.NewLine).Append(p);
            foreach (var u in unmapped) sb.Append(Environment.NewLine).Append($"unmapped: {u} (no place in the LDM key map)");
            foreach (var l in lines) sb.Append(Environment.NewLine).Append(l);
            throw new DiffusersWeightsMismatchException(sb.ToString(), reports);
        }

        // 3. The data, one component at a time (a component's source tensors are freed before the next is read).
        foreach (var (name, module) in modules)
        {
            var wanted = planned[name].Values.Select(v => v.Ldm).ToHashSet(StringComparer.Ordinal);
            using var part = SafeTensors.Load(file, wanted.Contains);
            var converted = map.Convert(part.Tensors).Components[name];
            try { StateDict.Load(module, converted, strict: true, sourceName: $"{file} ({name})"); }
            finally { foreach (var t in converted.Values) t.Dispose(); }
            if (options.DType == ScalarType.BFloat16) BFloat16Kernels.Repair(module);   // convolutions this machine's bf16 kernels get wrong, as the folder loader does
        }
        foreach (var (_, module) in modules) module.eval();
        return new TextToImagePipeline(vae, unet, text, tokenizer, new NoiseSchedule(schedule), latentSize, maxTokens);
    }

    /// <summary>
    /// Writes a pipeline's UNet, VAE and text encoder as one safetensors file in the LDM layout (the inverse of
    /// <see cref="Load"/>'s map; <paramref name="text"/> chooses SD 1.x's CLIP or SD 2.x's OpenCLIP names), with metadata
    /// "format": "pt". The configs are not in the file: keep the folder or preset they came from.
    /// </summary>
    public static void Save(TextToImagePipeline pipeline, string file, LdmTextEncoderKind text, ScalarType dtype = ScalarType.Float32)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"dtype {dtype} cannot be written (expected Float32, Float16 or BFloat16)", nameof(dtype));
        using var scope = NewDisposeScope();
        var map = new LdmKeyMap(pipeline.Unet.Config, pipeline.Vae.Config, pipeline.TextEncoder.Config);
        var ldm = map.ToLdm(pipeline.Unet.state_dict(), pipeline.Vae.state_dict(), pipeline.TextEncoder.state_dict(), text);
        var typed = ldm.ToDictionary(p => p.Key, p => p.Value.is_floating_point() && p.Value.dtype != dtype ? p.Value.to(dtype) : p.Value, StringComparer.Ordinal);
        var dir = Path.GetDirectoryName(Path.GetFullPath(file));
        if (dir is not null) Directory.CreateDirectory(dir);
        SafeTensors.Save(file, typed, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// A pipeline of randomly initialised models at the size the configs describe (seeded), in the requested dtype: for
    /// measuring memory and time at a real model's size without its weights. Without a tokenizer in the configs a small
    /// stand-in vocabulary is trained on a few report phrases (the token ids then mean nothing, which random weights do not mind).
    /// </summary>
    /// <exception cref="InvalidDataException">The configs have values this library cannot build.</exception>
    public static TextToImagePipeline Random(StableDiffusionConfigs configs, DiffusersLoadOptions? options = null, long seed = 0)
    {
        options ??= new DiffusersLoadOptions();
        CheckDType(options);
        var tokenizer = configs.Tokenizer ?? BpeTokenizer.Train(StandInCorpus, 400);
        var problems = new List<string>(configs.Unsupported);
        var (unetConfig, vaeConfig, textConfig, schedule, latentSize, maxTokens) =
            DiffusersPipelineLoader.ToLibraryConfigs(configs.Unet, configs.Vae, configs.TextEncoder, configs.Scheduler, tokenizer, options, problems);
        if (problems.Count > 0) throw new InvalidDataException($"{configs.Source}: cannot build this pipeline:{Environment.NewLine}{string.Join(Environment.NewLine, problems)}");
        manual_seed(seed);
        var unet = Build(() => new UNet2DConditionModel(unetConfig), options.DType);
        var vae = Build(() => new AutoencoderKL(vaeConfig), options.DType);
        var text = Build(() => new ClipTextModel(textConfig), options.DType);
        if (options.DType == ScalarType.BFloat16) foreach (var m in new nn.Module[] { unet, vae, text }) BFloat16Kernels.Repair(m);
        unet.eval(); vae.eval(); text.eval();
        return new TextToImagePipeline(vae, unet, text, tokenizer, new NoiseSchedule(schedule), latentSize, maxTokens);
    }

    private static readonly string[] StandInCorpus =
    [
        "right apical pneumothorax", "left pleural effusion", "no acute cardiopulmonary process", "cardiomegaly with mild pulmonary edema",
        "right lower lobe pneumonia", "bibasilar atelectasis", "a chest x-ray", "normal chest radiograph",
    ];

    private static void CheckDType(DiffusersLoadOptions options)
    {
        if (options.DType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"DType {options.DType} is not a floating-point type the models can run in (Float32, Float16, BFloat16, Float64)", nameof(options));
    }

    /// <summary>Builds a module and casts it at once, so that two full-precision models never exist together.</summary>
    private static T Build<T>(Func<T> create, ScalarType dtype) where T : nn.Module
    {
        var m = create();
        if (dtype != ScalarType.Float32) m.to(dtype);
        GC.Collect();
        return m;
    }

    private static long[] TargetShape(long[] shape, LdmKeyTarget target) => target.Transform switch
    {
        LdmTensorTransform.ConvToLinear when shape.Length == 4 && shape[2] == 1 && shape[3] == 1 => [shape[0], shape[1]],
        LdmTensorTransform.QkvPart when shape.Length >= 1 && shape[0] % 3 == 0 => [shape[0] / 3, .. shape[1..]],
        _ => shape,
    };

    private static string LdmKeyOrNone(LdmKeyMap map, string component, string key, LdmTextEncoderKind text)
    {
        try { return $"'{map.LdmKey(component, key, text)}'"; }
        catch (ArgumentException) { return "none"; }
    }
}

/// <summary>
/// Opens Stable Diffusion weights from whatever a user points at: a diffusers folder, a single-file LDM checkpoint
/// (.safetensors, with its configs), or <c>random:NAME</c> (random weights at the size of a preset or config folder, for
/// measuring memory and time).
/// </summary>
public static class StableDiffusionWeights
{
    /// <summary>The prefix of random weights: "random:sd15", "random:sd21-base" or "random:DIR".</summary>
    public const string RandomPrefix = "random:";

    /// <summary>Opens <paramref name="weights"/> (see the class summary) into a pipeline.</summary>
    /// <param name="weights">A diffusers folder, a .safetensors single file, or random:PRESET|DIR.</param>
    /// <param name="configs">The configs for a single file (required there), or for random weights (default: the name after random:); ignored for a folder.</param>
    /// <param name="options">Dtype (the models are built or cast to it), latent size and token length.</param>
    /// <exception cref="ArgumentException">A single file without configs, or a path that is neither a folder nor a file.</exception>
    public static TextToImagePipeline Open(string weights, StableDiffusionConfigs? configs, DiffusersLoadOptions? options = null)
    {
        options ??= new DiffusersLoadOptions();
        if (weights.StartsWith(RandomPrefix, StringComparison.Ordinal))
        {
            var name = weights[RandomPrefix.Length..];
            return SingleFileCheckpoint.Random(configs ?? StableDiffusionConfigs.Resolve(name), options);
        }
        if (Directory.Exists(weights))
        {
            if (!DiffusersPipelineLoader.IsDiffusersFolder(weights))
                throw new ArgumentException($"{weights}: not a diffusers folder (no model_index.json with a _class_name); expected a Stable Diffusion folder, a .safetensors single file or random:PRESET");
            return DiffusersPipelineLoader.Load(weights, options);
        }
        if (File.Exists(weights))
        {
            if (configs is null && !DiffusersFolder.PickleExtensions.Contains(Path.GetExtension(weights).ToLowerInvariant()))
                throw new ArgumentException($"{weights}: a single-file checkpoint holds no configs; give them (a diffusers folder's configs with tokenizer/, or a preset: {string.Join(", ", StableDiffusionConfigs.Presets)})");
            return SingleFileCheckpoint.Load(weights, configs ?? StableDiffusionConfigs.FromPreset("sd15"), options);
        }
        throw new ArgumentException($"{weights}: no such folder or file (expected a diffusers folder, a .safetensors single file or random:PRESET)");
    }
}
