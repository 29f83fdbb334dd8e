namespace RoentGen.Data.Phantoms;

/// <summary>
/// Settings of the procedural chest X-ray world. Prevalences are the marginal probability that a case
/// has the finding; co-occurrence (edema with cardiomegaly and effusions, devices with sicker patients)
/// is built in while keeping those marginals.
/// </summary>
public sealed record PhantomOptions
{
    /// <summary>Image side in pixels (square), 64..512.</summary>
    public int Size { get; init; } = 128;
    /// <summary>World seed: the same seed and case index always give the same case.</summary>
    public long Seed { get; init; }

    /// <summary>Probability of cardiomegaly (cardiothoracic ratio above 0.5).</summary>
    public double CardiomegalyPrevalence { get; init; } = 0.15;
    /// <summary>Probability that a case with cardiomegaly also has an enlarged cardiomediastinal silhouette.</summary>
    public double EnlargedMediastinumGivenCardiomegaly { get; init; } = 0.3;
    /// <summary>Probability of a pleural effusion.</summary>
    public double PleuralEffusionPrevalence { get; init; } = 0.15;
    /// <summary>Probability of a pneumothorax.</summary>
    public double PneumothoraxPrevalence { get; init; } = 0.06;
    /// <summary>Probability of a lobar consolidation.</summary>
    public double ConsolidationPrevalence { get; init; } = 0.12;
    /// <summary>Probability that a consolidation is called (or suspected as) pneumonia in the report.</summary>
    public double PneumoniaGivenConsolidation { get; init; } = 0.6;
    /// <summary>Probability of pulmonary edema.</summary>
    public double EdemaPrevalence { get; init; } = 0.08;
    /// <summary>Probability of a nodule or mass (lung lesion).</summary>
    public double LungLesionPrevalence { get; init; } = 0.08;
    /// <summary>Probability of atelectasis.</summary>
    public double AtelectasisPrevalence { get; init; } = 0.10;
    /// <summary>Probability of a rib fracture.</summary>
    public double FracturePrevalence { get; init; } = 0.05;
    /// <summary>Probability of support devices (ETT, central venous catheter, pacemaker).</summary>
    public double SupportDevicesPrevalence { get; init; } = 0.12;
    /// <summary>Probability that a subtle finding (small effusion, small nodule, plate-like atelectasis) is reported hedged (label -1).</summary>
    public double HedgeProbability { get; init; } = 0.25;
    /// <summary>
    /// Wording of the reports (<see cref="RoentGen.Data.Reports.ReportStyle"/>): the writer's templates (the default) or
    /// varied synonyms, abbreviations, hedges, order and terse style with the same labels. Left out of the JSON at its
    /// default, so options written before this setting read the same.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public RoentGen.Data.Reports.ReportStyle ReportStyle { get; init; }
    /// <summary>Probability of a female patient.</summary>
    public double FemaleFraction { get; init; } = 0.5;
    /// <summary>Youngest and oldest age in years (uniform).</summary>
    public int MinAge { get; init; } = 18;
    /// <summary>Oldest age in years.</summary>
    public int MaxAge { get; init; } = 90;
    /// <summary>Quantum-noise level: 0 = none, 1 = typical (about 2% of full scale).</summary>
    public double NoiseLevel { get; init; } = 1.0;
    /// <summary>Blur level: 0 = none, 1 = typical detector blur.</summary>
    public double BlurLevel { get; init; } = 1.0;

    /// <summary>Throws when a value is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of its range (the message names it).</exception>
    public void Validate()
    {
        if (Size < 64 || Size > 512)
            throw new ArgumentOutOfRangeException(nameof(Size), Size, "phantom image size must be between 64 and 512 pixels");
        void P(double v, string name)
        {
            if (!(v >= 0 && v <= 1)) throw new ArgumentOutOfRangeException(name, v, $"{name} must be a probability in [0, 1]");
        }
        P(CardiomegalyPrevalence, nameof(CardiomegalyPrevalence));
        P(EnlargedMediastinumGivenCardiomegaly, nameof(EnlargedMediastinumGivenCardiomegaly));
        P(PleuralEffusionPrevalence, nameof(PleuralEffusionPrevalence));
        P(PneumothoraxPrevalence, nameof(PneumothoraxPrevalence));
        P(ConsolidationPrevalence, nameof(ConsolidationPrevalence));
        P(PneumoniaGivenConsolidation, nameof(PneumoniaGivenConsolidation));
        P(EdemaPrevalence, nameof(EdemaPrevalence));
        P(LungLesionPrevalence, nameof(LungLesionPrevalence));
        P(AtelectasisPrevalence, nameof(AtelectasisPrevalence));
        P(FracturePrevalence, nameof(FracturePrevalence));
        P(SupportDevicesPrevalence, nameof(SupportDevicesPrevalence));
        P(HedgeProbability, nameof(HedgeProbability));
        P(FemaleFraction, nameof(FemaleFraction));
        if (MinAge < 1 || MaxAge > 110 || MinAge > MaxAge)
            throw new ArgumentOutOfRangeException(nameof(MinAge), $"ages must satisfy 1 <= MinAge <= MaxAge <= 110, got {MinAge}..{MaxAge}");
        if (!(NoiseLevel >= 0 && NoiseLevel <= 5)) throw new ArgumentOutOfRangeException(nameof(NoiseLevel), NoiseLevel, "NoiseLevel must be in [0, 5]");
        if (!(BlurLevel >= 0 && BlurLevel <= 5)) throw new ArgumentOutOfRangeException(nameof(BlurLevel), BlurLevel, "BlurLevel must be in [0, 5]");
    }
}
