namespace RoentGen.Platform;

/// <summary>Sets libtorch's intra-op thread count within bounds (a huge count would spawn threads until the machine stalls).</summary>
public static class TorchThreads
{
    /// <summary>The most threads accepted: four per logical CPU.</summary>
    public static int Max => 4 * Environment.ProcessorCount;

    /// <summary>Sets the intra-op thread count after checking it is 1 to <see cref="Max"/>.</summary>
    /// <exception cref="ArgumentException">Out of range; the message gives the range and the CPU count.</exception>
    public static void Set(int threads)
    {
        if (threads < 1 || threads > Max)
            throw new ArgumentException(
                $"threads must be 1 to {Max} (four per logical CPU; this machine has {Environment.ProcessorCount}), got {threads}");
        TorchSharp.torch.set_num_threads(threads);
    }
}
