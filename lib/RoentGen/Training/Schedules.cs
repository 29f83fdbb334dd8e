namespace RoentGen.Training;

/// <summary>Scalar schedules over training steps (learning rate, weight decay, EMA momentum, temperatures).</summary>
public static class Schedules
{
    /// <summary>Cosine from <paramref name="start"/> at step 0 to <paramref name="end"/> at <paramref name="total"/> (held after).</summary>
    public static double Cosine(double start, double end, long step, long total)
    {
        if (total <= 0) return end;
        double t = Math.Clamp((double)step / total, 0, 1);
        return end + (start - end) * 0.5 * (1 + Math.Cos(Math.PI * t));
    }

    /// <summary>Linear from start to end over <paramref name="total"/> steps (held after).</summary>
    public static double Linear(double start, double end, long step, long total) =>
        total <= 0 ? end : start + (end - start) * Math.Clamp((double)step / total, 0, 1);

    /// <summary>
    /// Learning-rate multiplier: linear warm-up from 0 over <paramref name="warmup"/> steps, then cosine decay to
    /// <paramref name="minFraction"/> at <paramref name="total"/>.
    /// </summary>
    public static double WarmupCosine(long step, long warmup, long total, double minFraction = 0.1)
    {
        if (warmup > 0 && step < warmup) return (step + 1.0) / warmup;
        return Cosine(1.0, minFraction, step - warmup, Math.Max(1, total - warmup));
    }
}
