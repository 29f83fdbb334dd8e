using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis.CSharp;

namespace RoentGen.Interactive.Notebooks;

/// <summary>A bad notebook parameter: unknown name, a value that does not parse as the declared type, or no parameters cell.</summary>
public sealed class NotebookParameterException(string message) : Exception(message);

/// <summary>
/// Papermill-style parameters for C# notebooks: the cell tagged <c>parameters</c> declares variables with
/// defaults (<c>int steps = 100;</c>, <c>var lr = 1e-3;</c>, <c>string name = "x";</c>); values given
/// on the command line are assigned in a new cell tagged <c>injected-parameters</c>, inserted just after it.
/// </summary>
public static partial class NotebookParameters
{
    /// <summary>Tag of the cell holding the defaults.</summary>
    public const string ParametersTag = "parameters";
    /// <summary>Tag of the cell the runner inserts.</summary>
    public const string InjectedTag = "injected-parameters";

    /// <summary>A declared parameter: its name, C# type keyword and default's source text.</summary>
    /// <param name="Name">Variable name.</param>
    /// <param name="Type">C# type keyword: int, long, double, float, decimal, bool or string.</param>
    /// <param name="Default">The default value as written in the cell.</param>
    /// <param name="Line">The declaration's line within the cell (1-based).</param>
    public sealed record Declaration(string Name, string Type, string Default, int Line);

    /// <summary>Finds the declarations of a parameters cell (one per line: <c>type name = value;</c>).</summary>
    public static IReadOnlyList<Declaration> Parse(string source)
    {
        var result = new List<Declaration>();
        var lines = source.Replace("\r\n", "\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var m = DeclarationPattern().Match(lines[i]);
            if (!m.Success) continue;
            var type = m.Groups["type"].Value;
            var value = m.Groups["value"].Value.Trim();
            if (type == "var" && InferType(value) is not { } inferred) continue; // not a literal we can type
            result.Add(new Declaration(m.Groups["name"].Value, type == "var" ? InferType(value)! : Normalise(type), value, i + 1));
        }
        return result;
    }

    /// <summary>
    /// Inserts (or replaces) the injected-parameters cell after the parameters cell. Returns the injected
    /// cell, or null when <paramref name="values"/> is empty.
    /// </summary>
    /// <exception cref="NotebookParameterException">No parameters cell, an unknown name, or a value of the wrong type.</exception>
    public static NotebookCell? Inject(Notebook notebook, IReadOnlyDictionary<string, string> values)
    {
        notebook.Cells.RemoveAll(c => c.Tags.Contains(InjectedTag));
        if (values.Count == 0) return null;
        var index = notebook.Cells.FindIndex(c => c.IsCode && c.Tags.Contains(ParametersTag));
        if (index < 0)
            throw new NotebookParameterException($"parameters given ({string.Join(", ", values.Keys)}) but the notebook has no code cell tagged '{ParametersTag}'");
        var declared = Parse(notebook.Cells[index].Source).GroupBy(d => d.Name).ToDictionary(g => g.Key, g => g.Last());

        var code = new StringBuilder("// Parameters injected by the RoentGen notebook runner\n");
        foreach (var (name, value) in values)
        {
            if (!declared.TryGetValue(name, out var decl))
            {
                var known = declared.Count == 0 ? "none found; declare them as 'int steps = 100;'" : string.Join(", ", declared.Values.Select(d => $"{d.Name} ({d.Type})"));
                throw new NotebookParameterException($"unknown parameter '{name}': the parameters cell (cell {index + 1}) declares {known}");
            }
            code.Append(name).Append(" = ").Append(Literal(decl, value, index + 1)).Append(";\n");
        }
        var cell = NotebookCell.Code(code.ToString().TrimEnd('\n'), InjectedTag);
        notebook.Cells.Insert(index + 1, cell);
        return cell;
    }

    private static string Literal(Declaration decl, string value, int cellNumber)
    {
        var inv = CultureInfo.InvariantCulture;
        NotebookParameterException Bad() => new(
            $"parameter '{decl.Name}' is declared as {decl.Type} (cell {cellNumber}, line {decl.Line}) but the value '{value}' is not a valid {decl.Type}");
        var v = value.Trim();
        switch (decl.Type)
        {
            case "int":
                return int.TryParse(v, NumberStyles.Integer, inv, out var i) ? i.ToString(inv) : throw Bad();
            case "long":
                return long.TryParse(v, NumberStyles.Integer, inv, out var l) ? l.ToString(inv) + "L" : throw Bad();
            case "double":
                if (!double.TryParse(v, NumberStyles.Float, inv, out var d)) throw Bad();
                return double.IsNaN(d) ? "double.NaN" : double.IsPositiveInfinity(d) ? "double.PositiveInfinity"
                    : double.IsNegativeInfinity(d) ? "double.NegativeInfinity" : d.ToString("R", inv) + "d";
            case "float":
                if (!float.TryParse(v, NumberStyles.Float, inv, out var f) || float.IsNaN(f) || float.IsInfinity(f)) throw Bad();
                return f.ToString("R", inv) + "f";
            case "decimal":
                return decimal.TryParse(v, NumberStyles.Float, inv, out var m) ? m.ToString(inv) + "m" : throw Bad();
            case "bool":
                return bool.TryParse(v, out var b) ? (b ? "true" : "false") : throw Bad();
            case "string":
                return SymbolDisplay.FormatLiteral(value, quote: true);
            default:
                throw Bad();
        }
    }

    private static string Normalise(string type) => type switch
    {
        "Int32" or "System.Int32" => "int",
        "Int64" or "System.Int64" => "long",
        "Double" or "System.Double" => "double",
        "Single" or "System.Single" => "float",
        "Decimal" or "System.Decimal" => "decimal",
        "Boolean" or "System.Boolean" => "bool",
        "String" or "System.String" => "string",
        _ => type,
    };

    // The type C# gives a literal initialiser of `var`.
    private static string? InferType(string literal)
    {
        var v = literal.Trim();
        if (v.StartsWith('"') || v.StartsWith("@\"", StringComparison.Ordinal) || v.StartsWith("$\"", StringComparison.Ordinal)) return "string";
        if (v is "true" or "false") return "bool";
        var n = v.TrimStart('-', '+').Replace("_", "");
        if (n.Length == 0 || !char.IsAsciiDigit(n[0]) && n[0] != '.') return null;
        var last = char.ToLowerInvariant(n[^1]);
        if (last == 'm') return "decimal";
        if (last == 'f') return "float";
        if (last == 'd') return "double";
        if (last == 'l' && !n.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) return "long";
        if (n.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) return "int";
        if (n.Contains('.') || n.Contains('e') || n.Contains('E')) return "double";
        return long.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) && x is >= int.MinValue and <= int.MaxValue ? "int" : "long";
    }

    [GeneratedRegex("""^\s*(?<type>var|int|long|double|float|decimal|bool|string|(System\.)?(Int32|Int64|Double|Single|Decimal|Boolean|String))\s+(?<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?<value>[^;]*);""")]
    private static partial Regex DeclarationPattern();
}
