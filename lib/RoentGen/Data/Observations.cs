namespace RoentGen.Data;

/// <summary>The 14 CheXpert observations, in the CheXpert labeler's order.</summary>
public enum Observation
{
    /// <summary>No Finding.</summary>
    NoFinding,
    /// <summary>Enlarged Cardiomediastinum.</summary>
    EnlargedCardiomediastinum,
    /// <summary>Cardiomegaly.</summary>
    Cardiomegaly,
    /// <summary>Lung Opacity.</summary>
    LungOpacity,
    /// <summary>Lung Lesion.</summary>
    LungLesion,
    /// <summary>Edema.</summary>
    Edema,
    /// <summary>Consolidation.</summary>
    Consolidation,
    /// <summary>Pneumonia.</summary>
    Pneumonia,
    /// <summary>Atelectasis.</summary>
    Atelectasis,
    /// <summary>Pneumothorax.</summary>
    Pneumothorax,
    /// <summary>Pleural Effusion.</summary>
    PleuralEffusion,
    /// <summary>Pleural Other.</summary>
    PleuralOther,
    /// <summary>Fracture.</summary>
    Fracture,
    /// <summary>Support Devices.</summary>
    SupportDevices,
}

/// <summary>How a report speaks of one observation (CheXpert's 1 / 0 / -1 / blank).</summary>
public enum Mention
{
    /// <summary>Not mentioned (blank).</summary>
    NotMentioned = 0,
    /// <summary>Positive (1).</summary>
    Positive = 1,
    /// <summary>Negative (0).</summary>
    Negative = 2,
    /// <summary>Uncertain (-1).</summary>
    Uncertain = 3,
}

/// <summary>Names and codes of the CheXpert observations.</summary>
public static class Observations
{
    /// <summary>All 14, in order.</summary>
    public static readonly IReadOnlyList<Observation> All = Enum.GetValues<Observation>();

    /// <summary>The CheXpert column names, in order ("No Finding", ..., "Support Devices").</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
        "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
        "Fracture", "Support Devices",
    ];

    /// <summary>The CheXpert column name of an observation.</summary>
    public static string Name(this Observation o) => Names[(int)o];

    /// <summary>Parses a CheXpert name (case-insensitive; spaces, underscores and hyphens ignored).</summary>
    /// <exception cref="FormatException">Unknown name.</exception>
    public static Observation Parse(string name)
    {
        if (TryParse(name, out var o)) return o;
        throw new FormatException($"unknown CheXpert observation '{name}'; expected one of: {string.Join(", ", Names)}");
    }

    /// <summary>Parses a CheXpert name, returning false when unknown.</summary>
    public static bool TryParse(string name, out Observation observation)
    {
        static string Key(string s) => new(s.Where(char.IsLetter).Select(char.ToLowerInvariant).ToArray());
        var k = Key(name);
        for (int i = 0; i < Names.Count; i++)
            if (Key(Names[i]) == k) { observation = (Observation)i; return true; }
        observation = default;
        return false;
    }

    /// <summary>The CSV code of a mention: "1", "0", "-1" or "" (not mentioned).</summary>
    public static string Code(this Mention m) => m switch
    {
        Mention.Positive => "1",
        Mention.Negative => "0",
        Mention.Uncertain => "-1",
        _ => "",
    };

    /// <summary>Parses a CSV code ("1", "1.0", "0", "-1", "" ); throws on anything else.</summary>
    /// <exception cref="FormatException">Not one of the codes.</exception>
    public static Mention ParseCode(string code) => code.Trim() switch
    {
        "1" or "1.0" => Mention.Positive,
        "0" or "0.0" => Mention.Negative,
        "-1" or "-1.0" => Mention.Uncertain,
        "" => Mention.NotMentioned,
        var other => throw new FormatException($"unknown label value '{other}'; expected 1, 0, -1 or blank"),
    };
}

/// <summary>One mention per CheXpert observation.</summary>
public sealed class CxrLabels : IEquatable<CxrLabels>
{
    private readonly Mention[] _values = new Mention[14];

    /// <summary>The mention of one observation.</summary>
    public Mention this[Observation o]
    {
        get => _values[(int)o];
        set => _values[(int)o] = value;
    }

    /// <summary>Observations marked positive.</summary>
    public IEnumerable<Observation> Positives => Observations.All.Where(o => this[o] == Mention.Positive);

    /// <summary>True when the observation is positive.</summary>
    public bool Has(Observation o) => this[o] == Mention.Positive;

    /// <summary>Labels with the given observations positive and the rest not mentioned.</summary>
    public static CxrLabels FromPositives(IEnumerable<Observation> positives)
    {
        var l = new CxrLabels();
        foreach (var o in positives) l[o] = Mention.Positive;
        return l;
    }

    /// <summary>A copy.</summary>
    public CxrLabels Clone()
    {
        var c = new CxrLabels();
        Array.Copy(_values, c._values, 14);
        return c;
    }

    /// <summary>0/1 vector of positives, in <see cref="Observations.All"/> order.</summary>
    public float[] ToBinaryVector() => _values.Select(v => v == Mention.Positive ? 1f : 0f).ToArray();

    /// <inheritdoc />
    public bool Equals(CxrLabels? other) => other is not null && _values.AsSpan().SequenceEqual(other._values);
    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as CxrLabels);
    /// <inheritdoc />
    public override int GetHashCode() => _values.Aggregate(17, (h, v) => h * 31 + (int)v);
    /// <inheritdoc />
    public override string ToString() =>
        string.Join(", ", Observations.All.Where(o => this[o] != Mention.NotMentioned).Select(o => $"{o.Name()}={this[o].Code()}"));
}
