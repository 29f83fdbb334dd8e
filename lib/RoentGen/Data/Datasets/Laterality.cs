using System.Text.RegularExpressions;

namespace RoentGen.Data.Datasets;

/// <summary>
/// Left/right swapping for horizontal flips. A flipped chest X-ray shows a mirrored patient, so everything
/// that names a side must swap with the pixels: report text, mask names and side attributes.
/// <para>Text: the words left/right (also in "left-sided", "leftward") swap keeping their case
/// (left→right, Left→Right, LEFT→RIGHT); single letters L/R swap only where they clearly mean a side:
/// before an anatomical word ("R lung", "L base", "R hemidiaphragm"), in "(L)"/"(R)", and in "R&gt;L" / "L&gt;R"
/// comparisons; lobe abbreviations RUL↔LUL and RLL↔LLL swap. Left alone: "L" as a unit ("2 L"),
/// vertebrae ("L1"), RML and lingula (no mirror counterpart). Expect the heart on the other side too:
/// a flip makes anatomy look like situs inversus, which is why it is opt-in.</para>
/// </summary>
public static partial class Laterality
{
    [GeneratedRegex(@"(?<![A-Za-z])(left|right)(?=ward|[^A-Za-z]|$)", RegexOptions.IgnoreCase)]
    private static partial Regex Words();

    [GeneratedRegex(@"(?<![A-Za-z0-9])([LR])(?=\s*(?:>|<|=)\s*[LR](?![A-Za-z0-9]))|(?<=[LR]\s*(?:>|<|=)\s*)([LR])(?![A-Za-z0-9])|(?<=\()([LR])(?=\))|(?<![A-Za-z0-9])([LR])(?=\.?\s+(?:lung|lungs|base|bases|basilar|apex|apices|apical|hemithorax|hemidiaphragm|diaphragm|upper|lower|mid|middle|side|sided|pleural|effusion|costophrenic|hilum|hilar|perihilar|lobe|chest|ij|internal|subclavian|picc|mainstem|bronchus|breast|shoulder|clavicle|rib|ribs|axilla|axillary|heart|atrium|ventricle|neck|arm|humerus|scapula|paratracheal|retrocardiac)\b)", RegexOptions.IgnoreCase)]
    private static partial Regex Letters();

    [GeneratedRegex(@"\b(RUL|LUL|RLL|LLL)\b")]
    private static partial Regex Lobes();

    [GeneratedRegex(@"(?<![A-Za-z0-9])([LRlr])(?![A-Za-z0-9])")]
    private static partial Regex NameLetters();

    // A side word starting a name part: "left_lung", "LeftLung", "lungLeft"; not "Copyright" or "brightness".
    [GeneratedRegex(@"(?<![a-z])(?:left|right|Left|Right|LEFT|RIGHT)(?![a-z])")]
    private static partial Regex NameWords();

    /// <summary>Swaps sides in free text (see the class remarks for what counts as a side).</summary>
    public static string SwapText(string text)
    {
        if (string.IsNullOrEmpty(text)) return text;
        var s = Words().Replace(text, m => KeepCase(m.Value, Other(m.Value)));
        s = Letters().Replace(s, m => m.Value == "L" ? "R" : m.Value == "R" ? "L" : m.Value == "l" ? "r" : m.Value == "r" ? "l" : m.Value);
        s = Lobes().Replace(s, m => m.Value switch { "RUL" => "LUL", "LUL" => "RUL", "RLL" => "LLL", _ => "RLL" });
        return s;
    }

    /// <summary>Swaps sides in an identifier such as a mask name: "left_lung"↔"right_lung", "lung_L"↔"lung_R", "LeftLung"↔"RightLung".</summary>
    public static string SwapName(string name)
    {
        var s = NameWords().Replace(name, m => KeepCase(m.Value, Other(m.Value)));
        return NameLetters().Replace(s, m => m.Value switch { "L" => "R", "R" => "L", "l" => "r", _ => "l" });
    }

    /// <summary>Swaps sides in an attribute value: a bare side ("L", "left", "Right") or free text.</summary>
    public static string SwapValue(string value)
    {
        var t = value.Trim();
        if (t.Length == 1 && "LRlr".Contains(t[0])) return SwapName(value);
        return SwapText(value);
    }

    /// <summary>A report with every section's sides swapped.</summary>
    public static CxrReport Swap(CxrReport report) =>
        report.IsEmpty ? report : new CxrReport(Opt(report.Findings), Opt(report.Impression), Opt(report.Full));

    [GeneratedRegex(@"\b(?:RML|lingula|lingular)\b", RegexOptions.IgnoreCase)]
    private static partial Regex UnpairedLobes();

    /// <summary>
    /// The patient's sides a text names, by the words and abbreviations <see cref="SwapText"/> swaps (left/right, side
    /// letters such as "R lung" or "(L)", RUL/RLL/LUL/LLL) plus RML (right) and the lingula (left). "Bilateral" names no
    /// side by itself. A text naming both sides returns both flags.
    /// </summary>
    public static PatientSides SidesNamed(string text)
    {
        if (string.IsNullOrEmpty(text)) return PatientSides.None;
        var sides = PatientSides.None;
        static PatientSides Of(string w) => w.Equals("left", StringComparison.OrdinalIgnoreCase) || w.Equals("l", StringComparison.OrdinalIgnoreCase) ? PatientSides.Left : PatientSides.Right;
        foreach (Match m in Words().Matches(text)) sides |= Of(m.Groups[1].Value);
        foreach (Match m in Letters().Matches(text)) sides |= Of(m.Value);
        foreach (Match m in Lobes().Matches(text)) sides |= m.Value[0] == 'L' ? PatientSides.Left : PatientSides.Right;
        foreach (Match m in UnpairedLobes().Matches(text)) sides |= m.Value.StartsWith("RML", StringComparison.OrdinalIgnoreCase) ? PatientSides.Right : PatientSides.Left;
        return sides;
    }

    /// <summary>The image mirrored left to right (exact: no resampling).</summary>
    public static GrayImage FlipHorizontal(GrayImage image)
    {
        var o = new GrayImage(image.Width, image.Height, new float[image.Pixels.Length], image.SourceBitDepth);
        for (int y = 0; y < image.Height; y++)
        {
            int row = y * image.Width;
            for (int x = 0; x < image.Width; x++) o.Pixels[row + x] = image.Pixels[row + image.Width - 1 - x];
        }
        return o;
    }

    private static string? Opt(string? s) => s is null ? null : SwapText(s);

    private static string Other(string word) => word.Equals("left", StringComparison.OrdinalIgnoreCase) ? "right" : "left";

    private static string KeepCase(string original, string replacement)
    {
        if (original.All(c => !char.IsLetter(c) || char.IsUpper(c))) return replacement.ToUpperInvariant();
        if (char.IsUpper(original[0])) return char.ToUpperInvariant(replacement[0]) + replacement[1..];
        return replacement;
    }
}

/// <summary>The patient's sides something is on or a text names (a frontal radiograph shows the patient's right on the image's left).</summary>
[Flags]
public enum PatientSides
{
    /// <summary>No side.</summary>
    None = 0,
    /// <summary>The patient's right.</summary>
    Right = 1,
    /// <summary>The patient's left.</summary>
    Left = 2,
    /// <summary>Both sides.</summary>
    Both = Right | Left,
}
