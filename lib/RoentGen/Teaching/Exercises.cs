using System.Globalization;

namespace RoentGen.Teaching;

/// <summary>One exercise of a notebook: its question, how an answer is judged, and what a right answer means.</summary>
/// <param name="Id">"NN-qK": the notebook's number and the question's.</param>
/// <param name="Question">The question as the notebook asks it, with the form of answer expected.</param>
/// <param name="Explanation">Why the right answer is right (shown once it is found).</param>
/// <param name="Hint">What to look at again (shown after a wrong answer).</param>
/// <param name="Expected">A number (judged to <paramref name="Tolerance"/>) or the accepted words (judged without case).</param>
/// <param name="Tolerance">Absolute tolerance of a numeric answer; ignored for words.</param>
public sealed record Exercise(string Id, string Question, string Explanation, string Hint, object Expected, double Tolerance = 0)
{
    /// <summary>Whether <paramref name="answer"/> is right: a number within the tolerance, or one of the accepted words.</summary>
    public bool Accepts(object? answer)
    {
        if (answer is null) return false;
        if (Expected is double target)
        {
            double? value = answer switch
            {
                double d => d, float f => f, int i => i, long l => l, decimal m => (double)m,
                string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => p,
                _ => null,
            };
            return value is double v && double.IsFinite(v) && Math.Abs(v - target) <= Tolerance;
        }
        var text = Convert.ToString(answer, CultureInfo.InvariantCulture)?.Trim().Trim('.', '"', '\'') ?? "";
        return Expected is string[] words && words.Any(w => string.Equals(w, text, StringComparison.OrdinalIgnoreCase));
    }
}

/// <summary>The outcome of <see cref="Exercises.Check"/>: right or not, and what to read next.</summary>
/// <param name="Id">The exercise.</param>
/// <param name="Correct">Whether the answer was right.</param>
/// <param name="Message">The explanation (right) or a hint (wrong).</param>
public sealed record ExerciseCheck(string Id, bool Correct, string Message)
{
    /// <summary>"02-q1: right. ..." or "02-q1: not yet. ...".</summary>
    public override string ToString() => $"{Id}: {(Correct ? "right" : "not yet")}. {Message}";
}

/// <summary>
/// The exercises of the teaching notebooks (00-05). A notebook asks <see cref="Exercise.Question"/> in a cell where the
/// student sets an answer, and a check cell calls <see cref="Check"/>, which says right or wrong; the answers live here,
/// not in the notebook, and tests check that each right answer passes and a wrong one fails.
/// </summary>
public static class Exercises
{
    private static readonly Exercise[] Items =
    [
        new("00-q1", "How many GFLOP does one 2048 x 2048 by 2048 x 2048 float32 matrix product take? (a number; a product of n x n matrices takes 2 n^3 floating-point operations)",
            "2 x 2048^3 = 17.18e9 operations: at 190 GFLOP/s (this machine's float32 peak, docs/PLATFORM.md) that is about 90 ms.",
            "Count one multiply and one add for each of the n^3 (row, column, inner index) triples; 1 GFLOP = 1e9.", 17.18, 0.05),
        new("00-q2", "The getting-started grid draws 128 x 128 phantoms. How many bytes does one such image take as float32 pixels? (a number)",
            "128 x 128 pixels x 4 bytes = 65,536 bytes (64 KiB); a batch of 32 is 2 MiB.",
            "Pixels times bytes per float32.", 65536.0, 0.5),

        new("01-q1", "On a frontal PA film, on which side of the image does a LEFT pleural effusion appear? (left or right)",
            "Image right: a PA film is viewed as if facing the patient, so the patient's left is on the viewer's right (notebook 03 measures this as the lower-zone brightness difference).",
            "Imagine facing the patient: where is their left hand?", new[] { "right", "image right" }),
        new("01-q2", "A report says \"possible small left effusion\". Which CheXpert value does the labeler give pleural effusion? (1, 0, -1 or blank)",
            "-1, uncertain: hedged findings are neither positive nor negative in CheXpert's scheme.",
            "Look at the hedged reports in the table: what value do 'possible' and 'may represent' get?", new[] { "-1", "uncertain" }),

        new("02-q1", "At a timestep where alpha-bar = 0.25, what is the coefficient of z_0 in z_t = sqrt(alpha-bar) z_0 + sqrt(1 - alpha-bar) eps? (a number)",
            "sqrt(0.25) = 0.5: half the clean latent's amplitude, a quarter of its variance; the noise has sqrt(0.75) = 0.87.",
            "Take the square root of alpha-bar.", 0.5, 1e-3),
        new("02-q2", "Classifier-free guidance: eps_u = 0.2, eps_c = 0.5, w = 4. What is eps_u + w (eps_c - eps_u)? (a number)",
            "0.2 + 4 x 0.3 = 1.4: guidance extrapolates past the conditional prediction, away from the unconditional one.",
            "Compute eps_c - eps_u first, then scale it by w.", 1.4, 1e-3),
        new("02-q3", "With guidance scale w = 1, which prediction does the sampler use? (conditional, unconditional or neither)",
            "Conditional: eps_u + 1 (eps_c - eps_u) = eps_c. The pipeline then skips the unconditional pass altogether.",
            "Put w = 1 into eps_u + w (eps_c - eps_u).", new[] { "conditional", "cond", "eps_c" }),

        new("03-q1", "A judge that cannot see a finding at all scores images prompted with and without it. What adherence AUC does it give, on average? (a number)",
            "0.5: its scores do not depend on the prompt, so it ranks the two groups at random. A weak judge pulls every AUC towards 0.5, never below.",
            "What AUC does a coin flip give?", 0.5, 0.01),
        new("03-q2", "A finding's adherence AUC is 0.30, well outside its interval around 0.5. What does that mean? (a: the judge is weak; b: the generator draws the finding more often when the prompt does NOT name it; c: the prompt is ignored)",
            "b: below 0.5 the judge ranks the un-prompted images higher, so the generator draws the opposite of what was asked (e.g. it confuses the finding with another prompt's), or the prompts confuse it.",
            "A weak judge and an ignored prompt both give 0.5. Which answer gives less?", new[] { "b" }),
        new("03-q3", "Which sampler's image does NOT converge to the long DPM-Solver++ run's image as its steps grow? (ddpm, ddim, dpmpp or euler)",
            "ddpm: it is ancestral, adding fresh noise at every step, so it samples another image from the same distribution; the ODE solvers (DDIM at eta 0, DPM-Solver++, Euler) follow one trajectory from the same starting noise.",
            "Which sampler adds new random noise at each step?", new[] { "ddpm" }),

        new("04-q1", "With K = 256 prototypes, what is the entropy in nats of uniform teacher targets (where the DINO term settles when it does not learn)? (a number)",
            "log 256 = 5.545 nats: the dashed line of the collapse chart.",
            "The entropy of a uniform distribution over K outcomes is log K (natural log).", Math.Log(256), 0.01),
        new("04-q2", "The teacher's momentum is m = 0.996. After one update, what fraction of the teacher's new weights comes from the student? (a number)",
            "1 - m = 0.004: the teacher is an exponential moving average with a horizon of about 1 / (1 - m) = 250 steps.",
            "teacher <- m teacher + (1 - m) student.", 0.004, 1e-4),
        new("04-q3", "Which of the three losses trains the patch tokens, the ones dense tasks such as segmentation read? (dino, ibot or koleo)",
            "ibot: masked patches must predict the teacher's distribution for the unmasked patch; DINO and KoLeo act on the CLS token.",
            "Which loss masks patches?", new[] { "ibot" }),

        new("05-q1", "On a finding, the random (untrained) encoder's linear probe gives AUC 0.70 and a trained encoder 0.69. Did the training add anything that probe can read? (yes or no)",
            "no: the random ViT is the floor; a trained encoder that does not beat it learned nothing that probe reads (0.01 is also within one seed's noise).",
            "What is the random encoder's row for?", new[] { "no" }),
        new("05-q2", "An AUC of 0.75 has a Hanley-McNeil standard error of 0.13. Does its 95 % interval (AUC +- 1.96 SE) include 0.5? (yes or no)",
            "yes: 0.75 - 1.96 x 0.13 = 0.495 < 0.5, so with so few images 0.75 is not yet distinguishable from chance.",
            "Compute 0.75 - 1.96 x 0.13.", new[] { "yes" }),
        new("10-q1", "A ControlNet has just been initialised from a trained UNet. By how much does it change the UNet's noise prediction? (a number)",
            "0: every zero convolution Z has zero weight and bias, so Z(F_c(x + Z(c))) = 0 and y = F(x); training starts from the text-only model and cannot harm it at step 0.",
            "What does a 1x1 convolution with all-zero weights and bias output?", 0.0, 1e-9),
        new("10-q2", "A generated image's lungs overlap the conditioning lung mask in 60 pixels; the segmented lungs cover 80 pixels and the mask 70. What is the Dice? (a number)",
            "0.8: Dice = 2 |P and G| / (|P| + |G|) = 120 / 150.",
            "Dice = 2 x overlap / (sum of the two areas).", 0.8, 1e-6),

        new("11-q1", "A study makes 10 comparisons; one arm's one-sided p is 0.004. Is it significant at a family-wise 0.05 after Bonferroni? (yes or no)",
            "yes: Bonferroni multiplies by the number of comparisons, 10 x 0.004 = 0.04 < 0.05 (Holm, never larger than Bonferroni, agrees).",
            "Multiply p by the number of comparisons.", new[] { "yes" }),
        new("11-q2", "Five seeds give paired differences with mean 0.020 and standard error 0.010; t(0.975; 4) = 2.776. What is the half-width of the 95 % interval?",
            "2.776 x 0.010 = 0.0278: the interval 0.020 +- 0.028 includes 0, so five seeds do not yet separate this arm from real-only.",
            "Half-width = t x SE, with n - 1 = 4 degrees of freedom.", 0.0278, 5e-4),
    ];

    private static readonly Dictionary<string, Exercise> ById = Items.ToDictionary(e => e.Id, StringComparer.Ordinal);

    /// <summary>Every exercise, in notebook order.</summary>
    public static IReadOnlyList<Exercise> All => Items;

    /// <summary>The exercises of one notebook ("02" or "02-train-latent-diffusion").</summary>
    public static IReadOnlyList<Exercise> ForNotebook(string notebook)
    {
        var prefix = notebook.Length >= 2 ? notebook[..2] + "-" : notebook;
        return Items.Where(e => e.Id.StartsWith(prefix, StringComparison.Ordinal)).ToList();
    }

    /// <summary>The exercise with this id.</summary>
    /// <exception cref="KeyNotFoundException">No exercise has that id; the message lists the known ones.</exception>
    public static Exercise Get(string id) => ById.TryGetValue(id, out var e) ? e
        : throw new KeyNotFoundException($"no exercise '{id}'; known: {string.Join(", ", ById.Keys)}");

    /// <summary>The question of an exercise, for the notebook to print above the answer cell.</summary>
    public static string Question(string id) => $"{id}: {Get(id).Question}";

    /// <summary>Judges an answer: right (with the explanation) or not yet (with a hint).</summary>
    /// <param name="id">The exercise, e.g. "02-q1".</param>
    /// <param name="answer">A number or a word; null counts as not answered yet.</param>
    public static ExerciseCheck Check(string id, object? answer)
    {
        var e = Get(id);
        if (answer is null || answer is string { Length: 0 }) return new ExerciseCheck(id, false, $"no answer yet. {e.Hint}");
        return e.Accepts(answer) ? new ExerciseCheck(id, true, e.Explanation) : new ExerciseCheck(id, false, e.Hint);
    }
}
