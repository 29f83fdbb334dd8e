using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace RoentGen.Interactive.Notebooks;

/// <summary>A notebook that cannot be exported as a file-based app; the message names the cell and what to change.</summary>
public sealed class NotebookExportException(string message) : Exception(message);

/// <summary>
/// Turns a Polyglot notebook into a C# file-based app (<c>dotnet run NAME.cs</c>, .NET 10): the notebook stays the one
/// source; the app is generated from it. Each cell keeps its code; what the kernel does implicitly is written out:
/// <c>using</c> directives move to the top, a cell's trailing value becomes <c>display(value);</c>, <c>#r</c> lines give
/// way to one <c>#:project</c> reference to lib/RoentGen.Interactive, the parameters cell reads <c>-p name=value</c>, type
/// declarations move to the end, and markdown and HTML cells go onto the page <see cref="FileApp"/> writes.
/// </summary>
public static class NotebookExport
{
    /// <summary>Where <c>roentgen notebook export</c> writes by default: apps/NAME.cs beside the notebook (git-ignored).</summary>
    public static string DefaultOutputPath(string notebookPath)
    {
        var full = Path.GetFullPath(notebookPath);
        return Path.Combine(Path.GetDirectoryName(full)!, "apps", Path.GetFileNameWithoutExtension(full) + ".cs");
    }

    /// <summary>The project file of lib/RoentGen.Interactive found above <paramref name="start"/>, or null.</summary>
    public static string? FindInteractiveProject(string start)
    {
        for (var dir = new DirectoryInfo(Path.GetFullPath(start)); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "lib", "RoentGen.Interactive", "RoentGen.Interactive.csproj");
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>Exports a notebook file; returns the path written.</summary>
    /// <exception cref="NotebookExportException">A cell cannot be expressed in a file-based app, or the library project was not found.</exception>
    public static string ExportFile(string notebookPath, string? outputPath = null, string? projectPath = null)
    {
        var notebook = Notebook.Load(notebookPath);
        outputPath = Path.GetFullPath(outputPath ?? DefaultOutputPath(notebookPath));
        projectPath ??= FindInteractiveProject(Path.GetDirectoryName(Path.GetFullPath(notebookPath))!)
            ?? throw new NotebookExportException($"lib/RoentGen.Interactive/RoentGen.Interactive.csproj not found above {notebookPath}: pass the project path");
        var outDir = Path.GetDirectoryName(outputPath)!;
        var code = ToFileBasedApp(notebook, Path.GetFileNameWithoutExtension(notebookPath),
            Path.GetRelativePath(outDir, Path.GetFullPath(projectPath)), Path.GetRelativePath(outDir, Path.GetDirectoryName(Path.GetFullPath(notebookPath))!));
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteAllText(outputPath, code);
        return outputPath;
    }

    /// <summary>The app's source for a notebook.</summary>
    /// <param name="notebook">The notebook.</param>
    /// <param name="name">Its name (the page title).</param>
    /// <param name="projectReference">The path of RoentGen.Interactive.csproj relative to the app file.</param>
    /// <param name="notebookFolder">The notebook's folder relative to the app file (the cells' working directory).</param>
    public static string ToFileBasedApp(Notebook notebook, string name, string projectReference, string notebookFolder)
    {
        var usings = new List<string>();
        var body = new StringBuilder();
        var types = new StringBuilder();
        var declaredIn = new Dictionary<string, int>(StringComparer.Ordinal);
        var defaultKernel = notebook.DefaultKernelName;
        for (int i = 0; i < notebook.Cells.Count; i++)
        {
            var cell = notebook.Cells[i];
            var n = i + 1;
            if (cell.CellType == "markdown") { body.Append($"app.Markdown({Literal(cell.Source)});\n"); continue; }
            if (!cell.IsCode || string.IsNullOrWhiteSpace(cell.Source)) continue;
            var kernel = cell.KernelNameFromMetadata ?? defaultKernel;
            var source = cell.Source.Replace("\r", "");
            if (source.StartsWith("#!html", StringComparison.Ordinal)) { kernel = "html"; source = source[(source.IndexOf('\n') + 1)..]; }
            if (kernel == "html") { body.Append($"app.Html({Literal(source)});\n"); continue; }
            if (kernel is not ("csharp" or "c#"))
                throw new NotebookExportException($"cell {n} runs in the '{kernel}' kernel: only C# and HTML cells can be exported as a C# app");

            body.Append($"\n// cell {n}\napp.Cell({Literal(cell.Source)});\n");
            var (code, cellUsings) = Translate(source, n, declaredIn);
            usings.AddRange(cellUsings.Where(u => !usings.Contains(u)));
            body.Append(code.Statements);
            types.Append(code.Types);
            if (cell.Tags.Contains(NotebookParameters.ParametersTag))
            {
                foreach (var d in NotebookParameters.Parse(cell.Source))
                    body.Append($"{d.Name} = app.Parameter(nameof({d.Name}), {d.Name});\n");
                body.Append("app.EndParameters();\n");
            }
        }

        var sb = new StringBuilder();
        sb.Append("#!/usr/bin/env -S dotnet run\n");
        sb.Append($"// Generated by `roentgen notebook export` from {name}.ipynb: edit the notebook and export again, not this file.\n");
        sb.Append($"// Run: dotnet run {name}.cs [-- -p name=value ...] [-- --html PAGE.html]; it writes {name}.html beside this file.\n");
        sb.Append($"#:project {projectReference.Replace('\\', '/')}\n");
        // Notebook code compiles as the kernel compiles it: no nullable analysis, warnings stay warnings, no AOT.
        sb.Append("#:property Nullable=disable\n#:property TreatWarningsAsErrors=false\n#:property GenerateDocumentationFile=false\n#:property PublishAot=false\n");
        // libtorch is about 0.5 GB: link it from the package cache rather than copy it into every app's build output.
        sb.Append("#:property CreateHardLinksForCopyLocalIfPossible=true\n\n");
        foreach (var u in new[] { "using System;", "using System.Collections.Generic;", "using System.IO;", "using System.Linq;", "using System.Threading.Tasks;" }
                     .Concat(usings).Distinct())
            sb.Append(u).Append('\n');
        sb.Append("using static RoentGen.Interactive.FileApp;\n\n");
        sb.Append($"var app = RoentGen.Interactive.FileApp.Start(args, {Literal(name)}, {Literal(notebookFolder.Replace('\\', '/'))});\n");
        sb.Append(body);
        sb.Append("app.Finish();\n");
        if (types.Length > 0) sb.Append("\n// Types declared in the notebook's cells.\n").Append(types);
        return sb.ToString();
    }

    private sealed record Translated(string Statements, string Types);

    private static (Translated Code, List<string> Usings) Translate(string source, int cellNumber, Dictionary<string, int> declaredIn)
    {
        // Kernel directives (#r, #i, #!...) have no meaning in an app: the #:project reference brings the library.
        var lines = source.Split('\n');
        for (int l = 0; l < lines.Length; l++)
        {
            var t = lines[l].TrimStart();
            if (t.StartsWith("#r ", StringComparison.Ordinal) || t.StartsWith("#i ", StringComparison.Ordinal) || t.StartsWith("#!", StringComparison.Ordinal))
                lines[l] = "// (kernel directive) " + lines[l];
        }
        var text = string.Join("\n", lines);
        var tree = CSharpSyntaxTree.ParseText(text, CSharpParseOptions.Default.WithKind(SourceCodeKind.Script).WithLanguageVersion(LanguageVersion.Latest));
        var root = (CompilationUnitSyntax)tree.GetRoot();
        if (tree.GetDiagnostics().FirstOrDefault(d => d.Severity == DiagnosticSeverity.Error) is { } error)
        {
            var line = error.Location.GetLineSpan().StartLinePosition.Line + 1;
            throw new NotebookExportException($"cell {cellNumber}, line {line}: {error.GetMessage()} (the cell does not parse as C#)");
        }
        var usings = root.Usings.Select(u => u.ToString().Trim()).ToList();
        var statements = new StringBuilder();
        var types = new StringBuilder();
        var members = root.Members;
        for (int m = 0; m < members.Count; m++)
        {
            var member = members[m];
            switch (member)
            {
                case GlobalStatementSyntax { Statement: ExpressionStatementSyntax e } when e.SemicolonToken.IsMissing && m == members.Count - 1:
                    statements.Append("display(").Append(e.Expression.ToString()).Append(");\n");
                    break;
                case GlobalStatementSyntax g:
                    if (g.Statement is LocalDeclarationStatementSyntax local) Declare(local.Declaration, cellNumber, declaredIn);
                    statements.Append(g.ToFullString().Trim('\n')).Append('\n');
                    break;
                case FieldDeclarationSyntax field:   // a script's top-level variable
                    Declare(field.Declaration, cellNumber, declaredIn);
                    statements.Append(field.WithModifiers(default).ToFullString().Trim('\n')).Append('\n');
                    break;
                case MethodDeclarationSyntax method:  // a script's top-level method is a local function in an app
                    statements.Append(method.WithModifiers(default).ToFullString().Trim('\n')).Append('\n');
                    break;
                case BaseTypeDeclarationSyntax or DelegateDeclarationSyntax:
                    types.Append(member.ToFullString().Trim('\n')).Append('\n');
                    break;
                default:
                    throw new NotebookExportException($"cell {cellNumber}: '{member.ToString().Split('\n')[0]}' ({member.Kind()}) has no place in a file-based app");
            }
        }
        return (new Translated(statements.ToString(), types.ToString()), usings);
    }

    private static void Declare(VariableDeclarationSyntax declaration, int cellNumber, Dictionary<string, int> declaredIn)
    {
        foreach (var v in declaration.Variables)
        {
            var name = v.Identifier.Text;
            if (declaredIn.TryGetValue(name, out var first))
                throw new NotebookExportException(
                    $"cell {cellNumber} declares '{name}' again (cell {first} declared it first): a notebook may shadow a variable, one program may not; rename one of them");
            declaredIn[name] = cellNumber;
        }
    }

    /// <summary>A C# raw string literal holding <paramref name="s"/> exactly.</summary>
    private static string Literal(string s)
    {
        s = s.Replace("\r", "");
        if (!s.Contains('\n') && !s.Contains('"') && !s.Contains('\\')) return "\"" + s + "\"";
        int run = 0, longest = 0;
        foreach (var c in s) { run = c == '"' ? run + 1 : 0; longest = Math.Max(longest, run); }
        var quotes = new string('"', Math.Max(3, longest + 1));
        // A raw literal's content starts on the line after the opening quotes and ends before the closing ones.
        return $"{quotes}\n{s}\n{quotes}";
    }
}
