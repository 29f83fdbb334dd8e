namespace RoentGen.Nn;

/// <summary>Which half of a classifier-free-guided UNet batch a row belongs to.</summary>
public enum GuidanceHalf
{
    /// <summary>Conditioned on the negative prompt ("" = unconditional): the first half of a guided batch.</summary>
    Unconditional,
    /// <summary>Conditioned on the row's prompt: the second half of a guided batch, or every row of an unguided one.</summary>
    Conditional,
}

/// <summary>
/// One denoising step of a sampling run, as the pipeline tells it to attention processors (through
/// <see cref="AttentionCall.Sampling"/>) and to step callbacks.
/// </summary>
/// <remarks>
/// The UNet batch of a step holds, when <see cref="Guided"/>, <see cref="BatchCount"/> unconditional rows followed
/// by <see cref="BatchCount"/> conditional rows of the same prompts (diffusers' layout); otherwise
/// <see cref="BatchCount"/> conditional rows. Row r is prompt <see cref="BatchStart"/> + r mod
/// <see cref="BatchCount"/> of the request.
/// <para>
/// The pipeline makes a step ambient with <see cref="Enter"/> around its UNet call, and every
/// <see cref="MultiHeadAttention"/> reads <see cref="Current"/>. The ambient value lives in an
/// <see cref="AsyncLocal{T}"/>: it flows with the calling thread (and its async continuations) only, so samplings on
/// different threads do not see each other's steps, and a forward outside any <see cref="Enter"/> scope (training,
/// a ViT or text encoder run on its own) sees null.
/// </para>
/// </remarks>
/// <param name="Step">Index of the step in the scheduler's timesteps (0 = the noisiest; img2img starts later).</param>
/// <param name="TotalSteps">Number of timesteps of the scheduler.</param>
/// <param name="Timestep">The training timestep the UNet is called at.</param>
/// <param name="BatchStart">Index in the request of the batch's first prompt.</param>
/// <param name="BatchCount">Prompts in the batch.</param>
/// <param name="Guided">True when the UNet batch stacks unconditional and conditional rows.</param>
public sealed record SamplingStep(int Step, int TotalSteps, long Timestep, int BatchStart, int BatchCount, bool Guided)
{
    private static readonly AsyncLocal<SamplingStep?> Ambient = new();

    /// <summary>The step the current thread is sampling, or null outside sampling.</summary>
    public static SamplingStep? Current => Ambient.Value;

    /// <summary>Rows of the UNet batch: 2·<see cref="BatchCount"/> when guided, else <see cref="BatchCount"/>.</summary>
    public int Rows => Guided ? 2 * BatchCount : BatchCount;

    /// <summary>The guidance half of UNet batch row <paramref name="row"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The row is outside 0..<see cref="Rows"/>−1.</exception>
    public GuidanceHalf HalfOf(long row)
    {
        CheckRow(row);
        return Guided && row < BatchCount ? GuidanceHalf.Unconditional : GuidanceHalf.Conditional;
    }

    /// <summary>Index in the request of the prompt of UNet batch row <paramref name="row"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The row is outside 0..<see cref="Rows"/>−1.</exception>
    public int PromptOf(long row)
    {
        CheckRow(row);
        return BatchStart + (int)(row % BatchCount);
    }

    /// <summary>Makes this step <see cref="Current"/> until the returned scope is disposed (which restores the previous one).</summary>
    public IDisposable Enter()
    {
        var previous = Ambient.Value;
        Ambient.Value = this;
        return new Restore(previous);
    }

    private void CheckRow(long row)
    {
        if (row < 0 || row >= Rows)
            throw new ArgumentOutOfRangeException(nameof(row), row, $"row must be in 0..{Rows - 1} for a {(Guided ? "guided" : "unguided")} batch of {BatchCount} prompts");
    }

    private sealed class Restore(SamplingStep? previous) : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            Ambient.Value = previous;
        }
    }
}
