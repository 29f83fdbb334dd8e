namespace RoentGen.Tests;

/// <summary>
/// Tests that seed libtorch's process-wide generator (manual_seed, then build or train a model) and compare
/// results across runs. xunit runs test classes in parallel, and another class drawing from the same global
/// generator in between would change the weights; this collection runs alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRngCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "global torch RNG";
}
