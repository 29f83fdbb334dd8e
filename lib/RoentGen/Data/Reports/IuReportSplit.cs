using System.Globalization;

namespace RoentGen.Data.Reports;

/// <summary>Which part of an IU reports table to use.</summary>
public enum IuHalf
{
    /// <summary>Every report.</summary>
    All,
    /// <summary>The development half: the reports the labeler's rules may be read against and tuned on.</summary>
    Dev,
    /// <summary>The held-out half: reports whose text is never read while developing; only their final score is looked at.</summary>
    HeldOut,
}

/// <summary>How reports are assigned to halves. Each rule depends on the report's uid alone, so a report keeps its half in any file.</summary>
public enum IuSplitRule
{
    /// <summary>Odd uid: held out; even uid: development. The split the labeler was developed against.</summary>
    UidParity,
    /// <summary>
    /// A seeded hash of the uid (seed <see cref="IuReportSplit.SeededHalfSeed"/>): held out when the hash's top bit is set. A second,
    /// independent split, to show that a held-out figure is not the luck of one split.
    /// </summary>
    SeededHalf,
}

/// <summary>
/// A fixed split of IU X-ray (Open-i) reports by uid into a development half and a held-out half, so that the report
/// labeler's agreement with the human tags can be measured on reports its rules were not written against.
/// </summary>
public static class IuReportSplit
{
    /// <summary>The seed of <see cref="IuSplitRule.SeededHalf"/> (the shared real sample's own seed).</summary>
    public const ulong SeededHalfSeed = 20240611;

    /// <summary>Whether the report with this uid is in the held-out half under a rule.</summary>
    public static bool IsHeldOut(long uid, IuSplitRule rule) => rule switch
    {
        IuSplitRule.UidParity => (uid & 1) == 1,
        IuSplitRule.SeededHalf => (Mix(unchecked((ulong)uid ^ (SeededHalfSeed * 0x9E3779B97F4A7C15UL))) >> 63) == 1,
        _ => throw new ArgumentOutOfRangeException(nameof(rule), rule, "unknown split rule"),
    };

    /// <summary>Whether a report with this uid belongs to a half under a rule.</summary>
    public static bool InHalf(long uid, IuHalf half, IuSplitRule rule) => half switch
    {
        IuHalf.All => true,
        IuHalf.Dev => !IsHeldOut(uid, rule),
        IuHalf.HeldOut => IsHeldOut(uid, rule),
        _ => throw new ArgumentOutOfRangeException(nameof(half), half, "unknown half"),
    };

    /// <summary>The rows of an IU reports table (column uid, an integer) that belong to a half, in file order.</summary>
    /// <exception cref="InvalidDataException">The table has no uid column, or a uid is not an integer (names the file and line).</exception>
    public static IReadOnlyList<CsvRow> Select(CsvTable reports, IuHalf half, IuSplitRule rule = IuSplitRule.UidParity)
    {
        ArgumentNullException.ThrowIfNull(reports);
        if (half == IuHalf.All) return reports.Rows;
        reports.RequireColumns("uid");
        return reports.Rows.Where(row => InHalf(Uid(row), half, rule)).ToArray();
    }

    /// <summary>The uid of a row, as an integer.</summary>
    /// <exception cref="InvalidDataException">The uid is not an integer.</exception>
    public static long Uid(CsvRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        string text = row["uid"];
        return long.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long uid)
            ? uid
            : throw new InvalidDataException($"{row.Source}, line {row.LineNumber}: uid '{text}' is not an integer (the IU split assigns reports to halves by their integer uid)");
    }

    // SplitMix64's finaliser: every input bit moves every output bit.
    private static ulong Mix(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
