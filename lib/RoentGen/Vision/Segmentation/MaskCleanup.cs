namespace RoentGen.Vision.Segmentation;

/// <summary>
/// Anatomical clean-up of a predicted binary mask, the usual last step of lung segmentation (e.g. the largest
/// connected components kept by Hofmanninger et al. 2020, "lungmask"): keep the largest 4-connected components (two
/// for the lungs, one for the heart) and fill the holes inside them. It uses only the prediction, never a reference.
/// </summary>
public static class MaskCleanup
{
    /// <summary>How many components a structure keeps: 2 for "lungs", 1 for "heart", none (no clean-up) otherwise.</summary>
    public static int ComponentsOf(string structure) => structure switch
    {
        "lungs" => 2,
        "heart" => 1,
        _ => 0,
    };

    /// <summary>
    /// Keeps the <paramref name="keep"/> largest 4-connected components of a (height × width) mask (values ≥ 0.5 are
    /// foreground; ties by first pixel in raster order) and fills their holes (background not connected to the border).
    /// Returns a new mask of 0 and 1.
    /// </summary>
    /// <exception cref="ArgumentException">The mask's length is not width × height, or keep is below 1.</exception>
    public static float[] KeepLargest(ReadOnlySpan<float> mask, int width, int height, int keep)
    {
        if (width < 1 || height < 1 || mask.Length != width * height)
            throw new ArgumentException($"mask has {mask.Length} values, expected {width} x {height}");
        if (keep < 1) throw new ArgumentException($"keep must be at least 1, got {keep}", nameof(keep));
        int n = width * height;
        var on = new bool[n];
        for (int p = 0; p < n; p++) on[p] = mask[p] >= 0.5f;
        var label = new int[n];
        var sizes = new List<int> { 0 };
        var queue = new int[n];
        for (int start = 0; start < n; start++)
        {
            if (!on[start] || label[start] != 0) continue;
            int id = sizes.Count, head = 0, tail = 0, count = 0;
            label[start] = id;
            queue[tail++] = start;
            while (head < tail)
            {
                int p = queue[head++];
                count++;
                int x = p % width, y = p / width;
                if (x > 0) Visit(p - 1);
                if (x < width - 1) Visit(p + 1);
                if (y > 0) Visit(p - width);
                if (y < height - 1) Visit(p + width);
            }
            sizes.Add(count);

            void Visit(int q)
            {
                if (label[q] == 0 && on[q]) { label[q] = id; queue[tail++] = q; }
            }
        }
        var kept = Enumerable.Range(1, sizes.Count - 1).OrderByDescending(i => sizes[i]).ThenBy(i => i).Take(keep).ToHashSet();
        var result = new float[n];
        for (int p = 0; p < n; p++) if (label[p] != 0 && kept.Contains(label[p])) result[p] = 1;
        FillHoles(result, width, height);
        return result;
    }

    // Background pixels that no 4-connected path of background links to the image border become foreground.
    private static void FillHoles(float[] mask, int width, int height)
    {
        int n = width * height;
        var outside = new bool[n];
        var queue = new int[n];
        int head = 0, tail = 0;
        for (int p = 0; p < n; p++)
        {
            int x = p % width, y = p / width;
            if ((x == 0 || y == 0 || x == width - 1 || y == height - 1) && mask[p] < 0.5f) { outside[p] = true; queue[tail++] = p; }
        }
        while (head < tail)
        {
            int p = queue[head++];
            int x = p % width, y = p / width;
            if (x > 0) Visit(p - 1);
            if (x < width - 1) Visit(p + 1);
            if (y > 0) Visit(p - width);
            if (y < height - 1) Visit(p + width);
        }
        for (int p = 0; p < n; p++) if (!outside[p]) mask[p] = 1;

        void Visit(int q)
        {
            if (!outside[q] && mask[q] < 0.5f) { outside[q] = true; queue[tail++] = q; }
        }
    }
}
