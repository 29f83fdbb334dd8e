namespace RoentGen.Feedback;

/// <summary>A rater's verdict on a synthetic image.</summary>
public enum RatingDecision
{
    /// <summary>The image is good enough to keep.</summary>
    Accept,
    /// <summary>The image should be left out.</summary>
    Reject,
}

/// <summary>
/// One rater's rating of one image: a decision, a grade from 1 (poor) to 5 (excellent), or both. In the store's
/// current view a (rater, image) pair has at most one rating, its latest submission; every submission is kept in the
/// history (see <see cref="RatingStore"/>).
/// </summary>
/// <param name="Rater">Who rated.</param>
/// <param name="ImageId">The image's id in the synthetic set.</param>
/// <param name="Decision">Accept, reject, or null when only a grade was given.</param>
/// <param name="Grade">1 to 5, or null when only a decision was given.</param>
/// <param name="RatedAt">When the server stored the submission (UTC).</param>
/// <param name="Submission">The submission's number in the store's history (increasing in the order submissions were stored).</param>
public sealed record ImageRating(string Rater, string ImageId, RatingDecision? Decision, int? Grade, DateTimeOffset RatedAt, long Submission)
{
    /// <summary>"accept", "reject" or "" (the spelling of the database, the CSV and the web API).</summary>
    public string DecisionText => Ratings.Format(Decision);
}

/// <summary>What a rater submits: checked by <see cref="Ratings.Validate"/> before it is stored.</summary>
/// <param name="Rater">Who rates (1 to 100 characters, no control characters).</param>
/// <param name="ImageId">The image's id (1 to 1000 characters, no control characters).</param>
/// <param name="Decision">Accept, reject, or null.</param>
/// <param name="Grade">1 to 5, or null. At least one of decision and grade is given.</param>
public sealed record RatingSubmission(string Rater, string ImageId, RatingDecision? Decision, int? Grade);

/// <summary>Spelling and checks shared by the store, the server and the CSV.</summary>
public static class Ratings
{
    /// <summary>The lowest grade.</summary>
    public const int MinGrade = 1;
    /// <summary>The highest grade.</summary>
    public const int MaxGrade = 5;

    /// <summary>"accept", "reject" or "" for null.</summary>
    public static string Format(RatingDecision? decision) => decision switch
    {
        RatingDecision.Accept => "accept",
        RatingDecision.Reject => "reject",
        _ => "",
    };

    /// <summary>Reads "accept" or "reject" (any case); null or "" gives null.</summary>
    /// <exception cref="ArgumentException">Any other text.</exception>
    public static RatingDecision? ParseDecision(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" => null,
        "accept" => RatingDecision.Accept,
        "reject" => RatingDecision.Reject,
        _ => throw new ArgumentException($"decision '{Platform.TextEscape.Escape(text)}' is not valid; expected \"accept\", \"reject\" or null"),
    };

    /// <summary>
    /// Why a submission cannot be stored, as (field, message), or null when it is valid: the field is the web API's
    /// JSON name ("rater", "imageId", "decision", "grade").
    /// </summary>
    public static (string Field, string Message)? Validate(RatingSubmission s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (TextProblem(s.Rater, 100) is string r) return ("rater", $"rater {r}");
        if (TextProblem(s.ImageId, 1000) is string i) return ("imageId", $"imageId {i}");
        if (s.Grade is int g && (g < MinGrade || g > MaxGrade)) return ("grade", $"grade must be an integer from {MinGrade} to {MaxGrade}, got {g}");
        if (s.Decision is null && s.Grade is null) return ("decision", "a rating needs a decision (\"accept\" or \"reject\"), a grade (1 to 5), or both; got neither");
        return null;
    }

    private static string? TextProblem(string? text, int maxLength)
    {
        if (string.IsNullOrWhiteSpace(text)) return "is missing or blank";
        if (text.Length > maxLength) return $"is {text.Length} characters long; expected at most {maxLength}";
        if (text.Any(char.IsControl)) return $"'{Platform.TextEscape.Escape(text)}' contains control characters";
        return null;
    }
}
