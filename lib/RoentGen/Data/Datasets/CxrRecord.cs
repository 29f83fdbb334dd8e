namespace RoentGen.Data.Datasets;

/// <summary>Where an image (or mask) comes from: a file on disk, or a function that makes it in memory.</summary>
public sealed class ImageSource
{
    private readonly Func<GrayImage>? _provider;

    private ImageSource(string? path, Func<GrayImage>? provider, string description)
    {
        Path = path;
        _provider = provider;
        Description = description;
    }

    /// <summary>An image file (PNG or JPEG).</summary>
    public static ImageSource FromFile(string path) => new(System.IO.Path.GetFullPath(path), null, path);

    /// <summary>An image made in memory on demand (e.g. a phantom); <paramref name="name"/> is used in messages.</summary>
    public static ImageSource FromProvider(Func<GrayImage> provider, string name) => new(null, provider, name);

    /// <summary>An image already in memory (not copied).</summary>
    public static ImageSource FromImage(GrayImage image, string name) => new(null, () => image, name);

    /// <summary>The absolute file path, or null for an in-memory source.</summary>
    public string? Path { get; }

    /// <summary>True when the image lives in a file.</summary>
    public bool IsFile => Path is not null;

    /// <summary>The path or provider name, for messages.</summary>
    public string Description { get; }

    /// <summary>True when the file exists (always true for in-memory sources).</summary>
    public bool Exists() => Path is null || File.Exists(Path);

    /// <summary>Reads or makes the image at its native size.</summary>
    /// <exception cref="FileNotFoundException">The file is missing.</exception>
    /// <exception cref="InvalidDataException">The file is not a decodable image.</exception>
    public GrayImage Load()
    {
        if (_provider is not null) return _provider();
        try { return ImageIO.Read(Path!); }
        catch (Exception ex) when (ex is not (FileNotFoundException or DirectoryNotFoundException or InvalidDataException or OutOfMemoryException))
        {
            // Decoders throw assorted exceptions on damaged files; callers see one kind.
            throw new InvalidDataException($"{Path}: not a decodable PNG or JPEG ({ex.GetType().Name}: {ex.Message})", ex);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Description;
}

/// <summary>The text of a radiology report, split into the two sections models use.</summary>
/// <param name="Findings">The FINDINGS section, or null when there is none.</param>
/// <param name="Impression">The IMPRESSION section (or CONCLUSION), or null when there is none.</param>
/// <param name="Full">The whole report as given, or null when there is no report.</param>
public sealed record CxrReport(string? Findings, string? Impression, string? Full)
{
    /// <summary>No report.</summary>
    public static CxrReport Empty { get; } = new(null, null, null);

    /// <summary>True when there is no text at all.</summary>
    public bool IsEmpty => Findings is null && Impression is null && Full is null;

    /// <summary>The text to train on: findings and impression joined, else the full text, else "".</summary>
    public string Text =>
        Findings is null && Impression is null ? Full ?? ""
        : string.Join(" ", new[] { Findings, Impression }.Where(s => !string.IsNullOrWhiteSpace(s)));

    /// <summary>
    /// The whole report as given (e.g. a phantom's "FINDINGS: ...\nIMPRESSION: ..."), else <see cref="Text"/>: what the
    /// language-supervised baseline and the report probe train on.
    /// </summary>
    public string FullText => Full ?? Text;

    /// <summary>A report of plain text whose sections are parsed when it has FINDINGS:/IMPRESSION: headers.</summary>
    public static CxrReport FromText(string? text) => ReportSections.Parse(text);
}

/// <summary>
/// One chest X-ray image with what is known about it. Every loader fills the same fields; what a source
/// lacks stays null or empty.
/// </summary>
public sealed record CxrRecord
{
    /// <summary>Unique within its dataset (usually the image path relative to the dataset root, or a DICOM id).</summary>
    public required string Id { get; init; }

    /// <summary>The patient; splits keep all images of one patient together.</summary>
    public required string PatientId { get; init; }

    /// <summary>Source dataset name (e.g. "mimic-cxr", "nih-cxr14", "tb-shenzhen", "phantom").</summary>
    public required string Dataset { get; init; }

    /// <summary>The image.</summary>
    public required ImageSource Image { get; init; }

    /// <summary>The image file, or null for an in-memory image.</summary>
    public string? ImagePath => Image.Path;

    /// <summary>The report (empty when the source has none).</summary>
    public CxrReport Report { get; init; } = CxrReport.Empty;

    /// <summary>The 14 CheXpert observations (from label columns or mapped from <see cref="SourceLabels"/>).</summary>
    public CxrLabels Labels { get; init; } = new();

    /// <summary>The labels as the source spelled them (e.g. NIH "Infiltration", "tuberculosis"), mapped or not.</summary>
    public IReadOnlyList<string> SourceLabels { get; init; } = [];

    /// <summary>Segmentation masks by name (e.g. "mask", "left_lung"); values in [0, 1], 1 = inside.</summary>
    public IReadOnlyDictionary<string, ImageSource> Masks { get; init; } = new Dictionary<string, ImageSource>();

    /// <summary>"M", "F", or null when unknown.</summary>
    public string? Sex { get; init; }

    /// <summary>Age in years, or null when unknown.</summary>
    public double? Age { get; init; }

    /// <summary>Projection as the source names it ("PA", "AP", "LATERAL", "frontal", ...); see <see cref="CxrViews"/>.</summary>
    public string? View { get; init; }

    /// <summary>Other source fields (e.g. study id, official split, license), blank values left out.</summary>
    public IReadOnlyDictionary<string, string> Attributes { get; init; } = new Dictionary<string, string>();

    /// <summary>The file the record was read from (for messages), or null.</summary>
    public string? SourceFile { get; init; }

    /// <summary>1-based line of <see cref="SourceFile"/> the record came from, or null.</summary>
    public int? SourceLine { get; init; }

    /// <summary>"file, line N" for messages.</summary>
    public string Origin => SourceFile is null ? $"record '{Id}'" : SourceFile + (SourceLine is int l ? $", line {l}" : "");

    /// <summary>The key that patient-level splits hash: dataset and patient, so equal ids in two sources differ.</summary>
    public string SplitKey => Dataset + "/" + PatientId;
}
