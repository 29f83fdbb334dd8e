namespace RoentGen.Data.Phantoms;

/// <summary>
/// A counter-based random source: every value is a hash of (key, counter), so a case's numbers depend
/// only on the world seed and the case index, never on thread scheduling or on other cases.
/// </summary>
internal struct PhantomRandom
{
    private readonly ulong _key;
    private ulong _counter;

    public PhantomRandom(long seed, long index, ulong stream)
    {
        _key = Mix(Mix((ulong)seed ^ 0x9E3779B97F4A7C15UL) ^ Mix((ulong)index + 0x632BE59BD9B4E019UL) ^ (stream * 0xD6E8FEB86659FD93UL));
        _counter = 0;
    }

    /// <summary>The key, for counter-based per-pixel noise.</summary>
    public readonly ulong Key => _key;

    /// <summary>SplitMix64 finaliser.</summary>
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextULong() => Mix(_key ^ (++_counter * 0xA24BAED4963EE407UL));
    /// <summary>Uniform in [0, 1).</summary>
    public double Next() => (NextULong() >> 11) * (1.0 / (1UL << 53));
    /// <summary>Uniform in [lo, hi).</summary>
    public double Range(double lo, double hi) => lo + (hi - lo) * Next();
    /// <summary>Integer in [lo, hi].</summary>
    public int Int(int lo, int hiInclusive) => lo + (int)(Next() * (hiInclusive - lo + 1));
    /// <summary>True with probability p.</summary>
    public bool Chance(double p) => Next() < p;
    /// <summary>Standard normal (Box-Muller).</summary>
    public double Normal()
    {
        double u1 = 1.0 - Next(), u2 = Next();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
    /// <summary>One element, uniformly.</summary>
    public T Pick<T>(IReadOnlyList<T> items) => items[Int(0, items.Count - 1)];
    /// <summary>One element, by weights.</summary>
    public T Pick<T>(IReadOnlyList<T> items, IReadOnlyList<double> weights)
    {
        double total = weights.Sum(), r = Next() * total;
        for (int i = 0; i < items.Count; i++)
        {
            r -= weights[i];
            if (r < 0) return items[i];
        }
        return items[^1];
    }
}
