using RoentGen.Data.Datasets;

namespace RoentGen.Feedback;

/// <summary>What the raters said about one image, over the raters considered.</summary>
/// <param name="ImageId">The image.</param>
/// <param name="Raters">How many raters rated it.</param>
/// <param name="Accepts">How many accepted it.</param>
/// <param name="Rejects">How many rejected it.</param>
/// <param name="MeanGrade">The mean of the grades given, or null when no rater graded it.</param>
public sealed record ImageVerdict(string ImageId, int Raters, int Accepts, int Rejects, double? MeanGrade);

/// <summary>
/// Which rated images a filter keeps. An image passes when it has a rating from the raters considered and (with
/// <see cref="AcceptedOnly"/>) at least one of them accepted it and none rejected it, and (with <see cref="MinGrade"/>)
/// the mean of its grades is at least that (an image without a grade fails). An unrated image passes only with
/// <see cref="KeepUnrated"/>.
/// </summary>
public sealed record RatingFilter
{
    /// <summary>Keep only images accepted by a rater and rejected by none (default true).</summary>
    public bool AcceptedOnly { get; init; } = true;

    /// <summary>The lowest mean grade kept (1 to 5), or null for no grade threshold.</summary>
    public double? MinGrade { get; init; }

    /// <summary>Consider one rater's ratings only, or null for every rater.</summary>
    public string? Rater { get; init; }

    /// <summary>Keep images no considered rater rated (default false).</summary>
    public bool KeepUnrated { get; init; }
}

/// <summary>
/// How ratings become per-image loss weights for a fine-tuning run. Each rating gives a weight: a rejection
/// <see cref="RejectedWeight"/>; else a grade g gives <see cref="GradeWeights"/>[g - 1]; else (accepted, no grade)
/// <see cref="AcceptedWeight"/>. An image's weight is the mean over its raters; an unrated image gets
/// <see cref="UnratedWeight"/>.
/// </summary>
public sealed record RatingWeighting
{
    /// <summary>Weight of a rejection (default 0: the image is left out of the loss).</summary>
    public double RejectedWeight { get; init; }

    /// <summary>Weight of grades 1 to 5 (default 0.2, 0.4, 0.6, 0.8, 1.0: grade / 5).</summary>
    public IReadOnlyList<double> GradeWeights { get; init; } = [0.2, 0.4, 0.6, 0.8, 1.0];

    /// <summary>Weight of an acceptance without a grade (default 1).</summary>
    public double AcceptedWeight { get; init; } = 1.0;

    /// <summary>Weight of an image no rater rated (default 1: unrated images count as they would without feedback).</summary>
    public double UnratedWeight { get; init; } = 1.0;

    /// <summary>Rater whose ratings count, or null for every rater.</summary>
    public string? Rater { get; init; }
}

/// <summary>Turns expert ratings into a filtered synthetic set or per-image weights.</summary>
public static class RatingSelection
{
    /// <summary>Each rated image's verdict over the ratings given (one rater's only when <paramref name="rater"/> is set).</summary>
    /// <param name="ratings">Current ratings (at most one per rater and image, e.g. <see cref="RatingStore.Current"/>); for repeated pairs the highest submission counts.</param>
    /// <param name="rater">Only this rater, or null for all.</param>
    public static IReadOnlyDictionary<string, ImageVerdict> Verdicts(IEnumerable<ImageRating> ratings, string? rater = null)
    {
        ArgumentNullException.ThrowIfNull(ratings);
        return Latest(ratings, rater).GroupBy(r => r.ImageId, StringComparer.Ordinal).ToDictionary(g => g.Key, g =>
        {
            var grades = g.Where(r => r.Grade is not null).Select(r => (double)r.Grade!.Value).ToList();
            return new ImageVerdict(g.Key, g.Count(), g.Count(r => r.Decision == RatingDecision.Accept), g.Count(r => r.Decision == RatingDecision.Reject),
                grades.Count == 0 ? null : grades.Average());
        }, StringComparer.Ordinal);
    }

    /// <summary>Whether an image with this verdict (null: unrated) passes the filter.</summary>
    public static bool Passes(ImageVerdict? verdict, RatingFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (verdict is null || verdict.Raters == 0) return filter.KeepUnrated;
        if (filter.AcceptedOnly && (verdict.Accepts == 0 || verdict.Rejects > 0)) return false;
        if (filter.MinGrade is double min && (verdict.MeanGrade is not double mean || mean < min)) return false;
        return true;
    }

    /// <summary>The ids that pass the filter, in the order given.</summary>
    public static IReadOnlyList<string> Select(IEnumerable<string> imageIds, IEnumerable<ImageRating> ratings, RatingFilter filter)
    {
        ArgumentNullException.ThrowIfNull(imageIds);
        Check(filter);
        var verdicts = Verdicts(ratings, filter.Rater);
        return imageIds.Where(id => Passes(verdicts.GetValueOrDefault(id), filter)).ToList();
    }

    /// <summary>The records of a synthetic set that pass the filter (matched by <see cref="CxrRecord.Id"/>, the id the page shows).</summary>
    public static CxrDataset Filter(CxrDataset set, IEnumerable<ImageRating> ratings, RatingFilter filter)
    {
        ArgumentNullException.ThrowIfNull(set);
        Check(filter);
        var verdicts = Verdicts(ratings, filter.Rater);
        return set.Derive($"{set.Name} (expert-filtered)", set.Where(r => Passes(verdicts.GetValueOrDefault(r.Id), filter)));
    }

    /// <summary>Per-image loss weights (see <see cref="RatingWeighting"/>) for the ids given.</summary>
    /// <exception cref="ArgumentException">A weight is negative or not finite, or there are not exactly 5 grade weights.</exception>
    public static IReadOnlyDictionary<string, double> Weights(IEnumerable<string> imageIds, IEnumerable<ImageRating> ratings, RatingWeighting? weighting = null)
    {
        ArgumentNullException.ThrowIfNull(imageIds);
        var w = weighting ?? new RatingWeighting();
        if (w.GradeWeights.Count != Ratings.MaxGrade)
            throw new ArgumentException($"GradeWeights has {w.GradeWeights.Count} values; expected {Ratings.MaxGrade}, one per grade 1 to {Ratings.MaxGrade}", nameof(weighting));
        foreach (var (name, v) in w.GradeWeights.Select((v, i) => ($"GradeWeights[{i}]", v))
                     .Append(("RejectedWeight", w.RejectedWeight)).Append(("AcceptedWeight", w.AcceptedWeight)).Append(("UnratedWeight", w.UnratedWeight)))
            if (!double.IsFinite(v) || v < 0) throw new ArgumentException($"{name} is {v}; expected a finite weight of 0 or more", nameof(weighting));
        var byImage = Latest(ratings, w.Rater).ToLookup(r => r.ImageId, StringComparer.Ordinal);
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var id in imageIds)
        {
            var rs = byImage[id].ToList();
            result[id] = rs.Count == 0 ? w.UnratedWeight : rs.Average(r =>
                r.Decision == RatingDecision.Reject ? w.RejectedWeight
                : r.Grade is int g ? w.GradeWeights[g - 1]
                : w.AcceptedWeight);
        }
        return result;
    }

    private static void Check(RatingFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (filter.MinGrade is double m && (double.IsNaN(m) || m < Ratings.MinGrade || m > Ratings.MaxGrade))
            throw new ArgumentException($"MinGrade is {m}; expected {Ratings.MinGrade} to {Ratings.MaxGrade} or null", nameof(filter));
    }

    // One rating per (rater, image): the highest submission.
    private static IEnumerable<ImageRating> Latest(IEnumerable<ImageRating> ratings, string? rater) =>
        ratings.Where(r => rater is null || r.Rater == rater)
            .GroupBy(r => (r.Rater, r.ImageId))
            .Select(g => g.MaxBy(r => r.Submission)!);
}
