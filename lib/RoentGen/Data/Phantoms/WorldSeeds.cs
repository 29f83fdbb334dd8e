namespace RoentGen.Data.Phantoms;

/// <summary>
/// The phantom worlds an experiment keeps apart, derived from its data seed in one place: the training world, the
/// world the judge (proxy finding classifier) learns from, and the held-out world that serves as the real reference
/// (FID/KID, the judge's own test set). Different seeds give different patients, so no image is in two of them.
/// </summary>
public static class WorldSeeds
{
    /// <summary>The judge's training world: data seed + 1000.</summary>
    public static long Judge(long dataSeed) => dataSeed + 1000;

    /// <summary>The held-out reference world: data seed + 2000.</summary>
    public static long HeldOut(long dataSeed) => dataSeed + 2000;
}
