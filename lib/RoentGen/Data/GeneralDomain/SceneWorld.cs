using System.Collections;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;

namespace RoentGen.Data.GeneralDomain;

/// <summary>
/// Settings of the general-domain world: procedural grayscale scenes of shapes with captions, the "natural images"
/// this project's foundation model is pretrained on before it is adapted to chest X-rays (as Stable Diffusion was
/// pretrained on LAION before RoentGen adapted it). Same image size and channel count as the CXR world.
/// </summary>
public sealed record SceneOptions
{
    /// <summary>Image side in pixels (32 to 512).</summary>
    public int Size { get; init; } = 64;
    /// <summary>World seed: the same seed and index give the same scene.</summary>
    public long Seed { get; init; }
    /// <summary>Most object groups in one scene (1 to 4).</summary>
    public int MaxGroups { get; init; } = 3;
    /// <summary>Pixel noise standard deviation (0 for clean images).</summary>
    public double NoiseLevel { get; init; } = 0.015;

    /// <summary>Checks the ranges.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range.</exception>
    public void Validate()
    {
        if (Size < 32 || Size > 512) throw new ArgumentOutOfRangeException(nameof(Size), Size, "SceneOptions.Size must be 32..512");
        if (MaxGroups < 1 || MaxGroups > 4) throw new ArgumentOutOfRangeException(nameof(MaxGroups), MaxGroups, "SceneOptions.MaxGroups must be 1..4");
        if (!(NoiseLevel >= 0 && NoiseLevel <= 0.2)) throw new ArgumentOutOfRangeException(nameof(NoiseLevel), NoiseLevel, "SceneOptions.NoiseLevel must be 0..0.2");
    }
}

/// <summary>A group of identical objects in one cell of the scene's 3 x 3 grid (its place named by compass words).</summary>
/// <param name="Count">1 to 3 objects.</param>
/// <param name="Scale">tiny, medium, big or huge (relative to the cell).</param>
/// <param name="Shade">black, grey, silver or white.</param>
/// <param name="Pattern">plain, striped, dotted or checkered.</param>
/// <param name="Shape">circle, square, triangle, ring, star, cross, diamond or hexagon.</param>
/// <param name="Place">north west, north, north east, west, centre, east, south west, south, south east.</param>
public sealed record SceneGroup(int Count, string Scale, string Shade, string Pattern, string Shape, string Place);

/// <summary>One generated scene: the image, the truth, its caption and a mask per group.</summary>
public sealed record Scene(string Id, GrayImage Image, IReadOnlyList<SceneGroup> Groups, string Background, string Caption,
    IReadOnlyList<GrayImage> GroupMasks);

/// <summary>
/// Draws scenes and writes their captions. Deterministic: every number is a hash of (seed, index, counter), so a scene
/// does not depend on thread scheduling or on other scenes. The vocabulary (compass places, shades, shapes, patterns)
/// shares no word with the radiology report writer's (a test checks it), so a model pretrained here learns nothing
/// about chest X-ray language before it is adapted.
/// </summary>
public sealed class SceneGenerator
{
    /// <summary>Group sizes, smallest first.</summary>
    public static readonly IReadOnlyList<string> Scales = ["tiny", "medium", "big", "huge"];
    /// <summary>Shades, darkest first.</summary>
    public static readonly IReadOnlyList<string> Shades = ["black", "grey", "silver", "white"];
    /// <summary>Surface patterns.</summary>
    public static readonly IReadOnlyList<string> Patterns = ["plain", "striped", "dotted", "checkered"];
    /// <summary>Shapes.</summary>
    public static readonly IReadOnlyList<string> Shapes = ["circle", "square", "triangle", "ring", "star", "cross", "diamond", "hexagon"];
    /// <summary>The 3 x 3 grid's cells, row by row from the top ("north").</summary>
    public static readonly IReadOnlyList<string> Places = ["north west", "north", "north east", "west", "centre", "east", "south west", "south", "south east"];
    /// <summary>Backgrounds.</summary>
    public static readonly IReadOnlyList<string> Backgrounds = ["dusk", "fog", "sand", "night"];

    private static readonly float[] ShadeValue = [0.06f, 0.4f, 0.68f, 0.95f];
    private static readonly float[] BackgroundValue = [0.22f, 0.55f, 0.75f, 0.08f];
    private static readonly float[] ScaleRadius = [0.18f, 0.28f, 0.36f, 0.46f]; // fraction of a cell's half-side
    private static readonly string[] CountWords = ["", "a", "a pair of", "a trio of"];

    /// <summary>Creates a generator; the options are validated.</summary>
    public SceneGenerator(SceneOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    /// <summary>The world's settings.</summary>
    public SceneOptions Options { get; }

    /// <summary>Generates scene <paramref name="index"/> (0 or more).</summary>
    public Scene Generate(int index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "scene index must be 0 or more");
        var r = new PhantomRandom(Options.Seed ^ 0x5CE4E, index, 11);
        int groups = r.Int(1, Options.MaxGroups);
        var places = Enumerable.Range(0, 9).OrderBy(_ => r.NextULong()).Take(groups).OrderBy(p => p).ToArray();
        int bg = r.Int(0, Backgrounds.Count - 1);
        var list = new List<SceneGroup>();
        foreach (int p in places)
        {
            int count = r.Chance(0.6) ? 1 : r.Int(2, 3);
            int scale = count == 1 ? r.Int(0, 3) : r.Int(0, 1); // several objects share a cell: smaller ones
            int shade;
            do shade = r.Int(0, 3); while (MathF.Abs(ShadeValue[shade] - BackgroundValue[bg]) < 0.25f); // visible on its background
            list.Add(new SceneGroup(count, Scales[scale], Shades[shade], Pattern: r.Pick(Patterns), Shape: r.Pick(Shapes), Place: Places[p]));
        }
        int n = Options.Size;
        var img = new float[n * n];
        float b0 = BackgroundValue[bg], grad = (float)r.Range(-0.08, 0.08);
        for (int y = 0; y < n; y++)
        {
            float v = b0 + grad * ((y + 0.5f) / n - 0.5f);
            for (int x = 0; x < n; x++) img[y * n + x] = v;
        }
        var masks = new List<GrayImage>();
        foreach (var g in list)
        {
            var mask = new float[n * n];
            int cell = Index(Places, g.Place);
            float cx = (cell % 3 + 0.5f) / 3f, cy = (cell / 3 + 0.5f) / 3f, half = 0.5f / 3f;
            float rad = ScaleRadius[Index(Scales, g.Scale)] * half * 2;
            float rot = (float)r.Range(-0.3, 0.3);
            for (int k = 0; k < g.Count; k++)
            {
                // several objects sit side by side across the cell
                float ox = g.Count == 1 ? 0 : (k - (g.Count - 1) / 2f) * half * 2 / g.Count;
                float jitter = g.Count == 1 ? 0.25f : 0.1f;
                float px = cx + ox + (float)r.Range(-jitter, jitter) * half * (1 - rad / half * 0.5f);
                float py = cy + (float)r.Range(-jitter, jitter) * half * (1 - rad / half * 0.5f);
                float radius = g.Count == 1 ? rad : MathF.Min(rad, half * 0.9f / g.Count);
                Draw(img, mask, n, g, px, py, radius, rot);
            }
            masks.Add(new GrayImage(n, n, mask));
        }
        // a little blur and noise: photographs are not vector art
        Blur(img, n);
        if (Options.NoiseLevel > 0)
        {
            ulong key = r.NextULong();
            float sigma = (float)Options.NoiseLevel;
            for (int i = 0; i < img.Length; i++)
            {
                ulong h = PhantomRandom.Mix(key ^ ((ulong)i * 0xA24BAED4963EE407UL));
                float white = ((h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF)) * (1f / 65536f) - 1.5f;
                img[i] = Math.Clamp(img[i] + 2 * sigma * white, 0, 1);
            }
        }
        return new Scene($"scene_{index:D6}", new GrayImage(n, n, img), list, Backgrounds[bg], Caption(list, Backgrounds[bg]), masks);
    }

    /// <summary>Generates <paramref name="count"/> scenes from <paramref name="start"/> in parallel; the result is in index order.</summary>
    public IReadOnlyList<Scene> Generate(int start, int count, int? threads = null)
    {
        if (start < 0) throw new ArgumentOutOfRangeException(nameof(start), start, "start must be 0 or more");
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be 0 or more");
        var result = new Scene[count];
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads ?? Environment.ProcessorCount }, i => result[i] = Generate(start + i));
        return result;
    }

    /// <summary>
    /// The caption of a scene: one clause per group in grid order, e.g. "a pair of tiny white striped stars in the north west,
    /// a huge grey ring in the centre, on a night background." A single object takes "a" or "an".
    /// </summary>
    public static string Caption(IReadOnlyList<SceneGroup> groups, string background)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var sb = new StringBuilder();
        for (int i = 0; i < groups.Count; i++)
        {
            var g = groups[i];
            string pattern = g.Pattern == "plain" ? "" : g.Pattern + " ";
            string noun = g.Count == 1 ? g.Shape : Plural(g.Shape);
            string lead = g.Count == 1 ? (StartsWithVowel(g.Scale) ? "an" : "a") : CountWords[g.Count]; // "a pair of", "a trio of"
            if (i > 0) sb.Append(", ");
            sb.Append(CultureInfo.InvariantCulture, $"{lead} {g.Scale} {g.Shade} {pattern}{noun} in the {g.Place}");
        }
        sb.Append(CultureInfo.InvariantCulture, $", on a {background} background.");
        return sb.ToString();
    }

    /// <summary>Reads a caption back into its groups and background (the inverse of <see cref="Caption"/>).</summary>
    /// <exception cref="FormatException">The text is not a caption of this world.</exception>
    public static (IReadOnlyList<SceneGroup> Groups, string Background) ParseCaption(string caption)
    {
        ArgumentNullException.ThrowIfNull(caption);
        string text = caption.Trim();
        if (!text.EndsWith(" background.", StringComparison.Ordinal)) throw new FormatException($"caption '{caption}' does not end with '... background.'");
        var clauses = text[..^1].Split(", ", StringSplitOptions.None);
        string last = clauses[^1];
        if (!last.StartsWith("on a ", StringComparison.Ordinal)) throw new FormatException($"caption '{caption}': last clause '{last}' should be 'on a <background> background'");
        string background = last["on a ".Length..^" background".Length];
        if (!Backgrounds.Contains(background)) throw new FormatException($"caption '{caption}': unknown background '{background}'");
        var groups = new List<SceneGroup>();
        foreach (var clause in clauses[..^1])
        {
            int at = clause.IndexOf(" in the ", StringComparison.Ordinal);
            if (at < 0) throw new FormatException($"caption clause '{clause}' has no ' in the <place>'");
            string place = clause[(at + " in the ".Length)..];
            if (!Places.Contains(place)) throw new FormatException($"caption clause '{clause}': unknown place '{place}'");
            string head = clause[..at];
            int count = 1;
            if (head.StartsWith("a pair of ", StringComparison.Ordinal)) { count = 2; head = head["a pair of ".Length..]; }
            else if (head.StartsWith("a trio of ", StringComparison.Ordinal)) { count = 3; head = head["a trio of ".Length..]; }
            else if (head.StartsWith("a ", StringComparison.Ordinal) || head.StartsWith("an ", StringComparison.Ordinal)) head = head[(head.IndexOf(' ') + 1)..];
            else throw new FormatException($"caption clause '{clause}' should start with 'a', 'an', 'a pair of' or 'a trio of'");
            var words = ("x " + head).Split(' '); // words[0] stands for the count
            if (words.Length is < 4 or > 5) throw new FormatException($"caption clause '{clause}' should read '<count> <size> <shade> [pattern] <shape>'");
            string pattern = words.Length == 5 ? words[3] : "plain";
            string noun = words[^1], shape = count == 1 ? noun : Shapes.FirstOrDefault(s => Plural(s) == noun) ?? "";
            if (!Scales.Contains(words[1]) || !Shades.Contains(words[2]) || !Patterns.Contains(pattern) || !Shapes.Contains(shape))
                throw new FormatException($"caption clause '{clause}': unknown size, shade, pattern or shape");
            groups.Add(new SceneGroup(count, words[1], words[2], pattern, shape, place));
        }
        return (groups, background);
    }

    /// <summary>Every word a caption can use.</summary>
    public static IReadOnlySet<string> Vocabulary { get; } = new HashSet<string>(
        Scales.Concat(Shades).Concat(Patterns).Concat(Shapes).Concat(Shapes.Select(Plural)).Concat(Backgrounds)
            .Concat(Places.SelectMany(p => p.Split(' '))).Concat(CountWords.SelectMany(w => w.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
            .Concat(["a", "an", "in", "the", "on", "background"]), StringComparer.Ordinal);

    private static int Index(IReadOnlyList<string> list, string value)
    {
        for (int i = 0; i < list.Count; i++) if (list[i] == value) return i;
        throw new ArgumentException($"'{value}' is not one of: {string.Join(", ", list)}");
    }

    private static bool StartsWithVowel(string w) => "aeiou".Contains(w[0], StringComparison.Ordinal);

    private static string Plural(string shape) => shape switch { "cross" => "crosses", _ => shape + "s" };

    private static void Draw(float[] img, float[] mask, int n, SceneGroup g, float cx, float cy, float radius, float rot)
    {
        float value = ShadeValue[Index(Shades, g.Shade)];
        float px = 1f / n, soft = 0.75f * px;
        int x0 = Math.Max(0, (int)((cx - radius * 1.2f) * n) - 1), x1 = Math.Min(n - 1, (int)((cx + radius * 1.2f) * n) + 1);
        int y0 = Math.Max(0, (int)((cy - radius * 1.2f) * n) - 1), y1 = Math.Min(n - 1, (int)((cy + radius * 1.2f) * n) + 1);
        float cr = MathF.Cos(rot), sr = MathF.Sin(rot);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
            {
                float u = (x + 0.5f) * px - cx, v = (y + 0.5f) * px - cy;
                float ru = (cr * u + sr * v) / radius, rv = (-sr * u + cr * v) / radius; // shape frame, radius 1
                float sd = Distance(g.Shape, ru, rv) * radius; // signed distance in image units, negative inside
                float cover = Math.Clamp(0.5f - sd / (2 * soft), 0, 1);
                if (cover <= 0) continue;
                float shade = value;
                switch (g.Pattern)
                {
                    case "striped": if (((int)MathF.Floor((ru + 2) * 3)) % 2 == 0) shade = Contrast(value); break;
                    case "dotted":
                        float du = (ru + 2) * 3 - MathF.Floor((ru + 2) * 3) - 0.5f, dv = (rv + 2) * 3 - MathF.Floor((rv + 2) * 3) - 0.5f;
                        if (du * du + dv * dv < 0.09f) shade = Contrast(value);
                        break;
                    case "checkered": if ((((int)MathF.Floor((ru + 2) * 2.5f)) + ((int)MathF.Floor((rv + 2) * 2.5f))) % 2 == 0) shade = Contrast(value); break;
                }
                int i = y * n + x;
                img[i] = img[i] * (1 - cover) + shade * cover;
                if (cover >= 0.5f) mask[i] = 1;
            }
    }

    /// <summary>A shade's pattern partner: lighter for dark shades, darker for light ones.</summary>
    private static float Contrast(float v) => v < 0.5f ? v + 0.3f : v - 0.3f;

    /// <summary>Approximate signed distance to the unit-radius shape (negative inside).</summary>
    private static float Distance(string shape, float u, float v)
    {
        switch (shape)
        {
            case "circle": return MathF.Sqrt(u * u + v * v) - 1;
            case "ring": return MathF.Abs(MathF.Sqrt(u * u + v * v) - 0.75f) - 0.25f;
            case "square": { float qx = MathF.Abs(u) - 0.8f, qy = MathF.Abs(v) - 0.8f; return MathF.Max(qx, qy); }
            case "diamond": return (MathF.Abs(u) + MathF.Abs(v)) * 0.7071f - 0.75f;
            case "cross": { float a = MathF.Max(MathF.Abs(u) - 0.95f, MathF.Abs(v) - 0.3f), b = MathF.Max(MathF.Abs(u) - 0.3f, MathF.Abs(v) - 0.95f); return MathF.Min(a, b); }
            case "triangle":
                {
                    // point up: three half-planes
                    float e1 = v - 0.6f, e2 = (-0.866f * u - 0.5f * v) - 0.45f, e3 = (0.866f * u - 0.5f * v) - 0.45f;
                    return MathF.Max(e1, MathF.Max(e2, e3));
                }
            case "hexagon":
                {
                    float au = MathF.Abs(u), av = MathF.Abs(v);
                    return MathF.Max(av - 0.8f, (0.866f * au + 0.5f * av) - 0.8f);
                }
            case "star":
                {
                    float rr = MathF.Sqrt(u * u + v * v), th = MathF.Atan2(v, u);
                    float edge = 0.55f + 0.4f * MathF.Pow(MathF.Abs(MathF.Cos(2.5f * th)), 3);
                    return rr - edge;
                }
            default: throw new ArgumentException($"unknown shape '{shape}'");
        }
    }

    private static void Blur(float[] a, int n)
    {
        var t = new float[a.Length];
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                int xl = Math.Max(0, x - 1), xr = Math.Min(n - 1, x + 1);
                t[y * n + x] = 0.25f * a[y * n + xl] + 0.5f * a[y * n + x] + 0.25f * a[y * n + xr];
            }
        for (int y = 0; y < n; y++)
        {
            int yu = Math.Max(0, y - 1), yd = Math.Min(n - 1, y + 1);
            for (int x = 0; x < n; x++) a[y * n + x] = 0.25f * t[yu * n + x] + 0.5f * t[y * n + x] + 0.25f * t[yd * n + x];
        }
    }
}

/// <summary>The general-domain world as a dataset of records (image + caption as the report), for the same trainers as the CXR world.</summary>
public static class SceneRecords
{
    /// <summary>The records' dataset name.</summary>
    public const string DatasetName = "scenes";

    /// <summary>
    /// Scenes <paramref name="start"/>..<paramref name="start"/>+<paramref name="count"/>-1, generated on first access.
    /// The caption is the record's report (its <see cref="CxrReport.Full"/> and <see cref="CxrReport.Findings"/>); labels are empty.
    /// </summary>
    public static CxrDataset Create(SceneOptions options, int count, int start = 0)
    {
        var generator = new SceneGenerator(options);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be 0 or more");
        if (start < 0) throw new ArgumentOutOfRangeException(nameof(start), start, "start must be 0 or more");
        string range = count == 0 ? "no scenes" : $"scenes {start}-{start + count - 1}";
        return CxrDataset.OnDemand($"general-domain scenes (seed {options.Seed}, {options.Size} px, {range})", "", new Lazy(generator, start, count));
    }

    /// <summary>One scene as a record.</summary>
    public static CxrRecord FromScene(Scene scene)
    {
        ArgumentNullException.ThrowIfNull(scene);
        return new CxrRecord
        {
            Id = scene.Id,
            PatientId = scene.Id,
            Dataset = DatasetName,
            Image = ImageSource.FromImage(scene.Image, scene.Id),
            Report = new CxrReport(scene.Caption, null, scene.Caption),
        };
    }

    private sealed class Lazy(SceneGenerator generator, int start, int count) : IReadOnlyList<CxrRecord>
    {
        private readonly Lazy<CxrRecord>[] _records = Enumerable.Range(0, count)
            .Select(i => new Lazy<CxrRecord>(() => FromScene(generator.Generate(start + i)), LazyThreadSafetyMode.ExecutionAndPublication)).ToArray();

        public int Count => _records.Length;

        public CxrRecord this[int index] => (uint)index < (uint)_records.Length ? _records[index].Value
            : throw new ArgumentOutOfRangeException(nameof(index), index, $"the scene dataset holds records 0 to {_records.Length - 1}");

        public IEnumerator<CxrRecord> GetEnumerator()
        {
            for (int i = 0; i < _records.Length; i++) yield return _records[i].Value;
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

/// <summary>Times scene generation in memory.</summary>
public static class SceneBenchmark
{
    /// <summary>Generates <paramref name="count"/> scenes of side <paramref name="size"/> after a warm-up and returns scenes per second.</summary>
    public static double ImagesPerSecond(int size, int count, int? threads = null)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be positive");
        var g = new SceneGenerator(new SceneOptions { Size = size, Seed = 99 });
        g.Generate(1_000_000, Math.Min(16, count), threads);
        var sw = Stopwatch.StartNew();
        g.Generate(0, count, threads);
        return count / sw.Elapsed.TotalSeconds;
    }
}
