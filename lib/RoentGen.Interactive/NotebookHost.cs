using System.Reflection;

namespace RoentGen.Interactive;

/// <summary>A value shown in a notebook output that can be replaced in place.</summary>
public interface IDisplayHandle
{
    /// <summary>Replaces the shown value.</summary>
    void Update(object value);
}

/// <summary>
/// The bridge between the library and whatever notebook host runs it: the project's headless runner sets
/// <see cref="DisplayHook"/>; inside VS Code Polyglot Notebooks (dotnet-interactive) the kernel's own
/// <c>display</c> is found by reflection. Outside any notebook, <see cref="IsNotebook"/> is false.
/// </summary>
public static class NotebookHost
{
    private static readonly AsyncLocal<Func<object, IDisplayHandle>?> Hook = new();

    /// <summary>
    /// Set by a notebook host: shows a value and returns a handle that updates it. It flows with the async
    /// context that set it (the cells being run and what they start), so work on unrelated threads of the same
    /// process does not write into the notebook.
    /// </summary>
    public static Func<object, IDisplayHandle>? DisplayHook { get => Hook.Value; set => Hook.Value = value; }

    /// <summary>True when running inside a notebook host.</summary>
    public static bool IsNotebook => DisplayHook is not null || FindKernelDisplay() is not null;

    /// <summary>Shows a value in the notebook's output; returns null outside a notebook.</summary>
    public static IDisplayHandle? Display(object value)
    {
        if (DisplayHook is { } hook) return hook(value);
        var display = FindKernelDisplay();
        if (display is null) return null;
        var shown = display.Invoke(null, [value, Array.Empty<string>()]);
        return shown is null ? null : new ReflectedHandle(shown);
    }

    private static MethodInfo? _kernelDisplay;
    private static bool _searched;

    // dotnet-interactive: Microsoft.DotNet.Interactive.Kernel.display(object value, params string[] mimeTypes)
    private static MethodInfo? FindKernelDisplay()
    {
        if (_searched) return _kernelDisplay;
        var asm = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => a.GetName().Name == "Microsoft.DotNet.Interactive");
        if (asm is null) return null; // not loaded (yet): look again next time
        _kernelDisplay = asm.GetType("Microsoft.DotNet.Interactive.Kernel")?
            .GetMethods(BindingFlags.Public | BindingFlags.Static)
            .FirstOrDefault(m => m.Name == "display" && m.GetParameters().Length == 2);
        _searched = true;
        return _kernelDisplay;
    }

    private sealed class ReflectedHandle(object displayedValue) : IDisplayHandle
    {
        private readonly MethodInfo? _update = displayedValue.GetType().GetMethod("Update", [typeof(object)]);
        public void Update(object value) => _update?.Invoke(displayedValue, [value]);
    }
}
