namespace RoentGen.Tests;

/// <summary>
/// Tests that use process-wide state: libtorch's global generator (manual_seed, then build or train a model and
/// compare results across runs) or the notebook host (NotebookHost.DisplayHook, which a running notebook sets).
/// xunit runs test classes in parallel, so such classes run in this collection, alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessStateCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "process-wide state";
}
