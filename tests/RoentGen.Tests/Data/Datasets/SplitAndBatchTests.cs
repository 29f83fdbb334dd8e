using RoentGen.Data;
using RoentGen.Data.Datasets;
using static TorchSharp.torch;

namespace RoentGen.Tests.Data.Datasets;

public class SplitAndBatchTests
{
    private static CxrDataset Synthetic(int patients, int imagesPerPatient)
    {
        var img = new GrayImage(4, 4);
        var recs = new List<CxrRecord>();
        for (int p = 0; p < patients; p++)
            for (int i = 0; i < imagesPerPatient; i++)
                recs.Add(new CxrRecord { Id = $"p{p}_{i}", PatientId = $"p{p}", Dataset = "syn", Image = ImageSource.FromImage(img, $"p{p}_{i}") });
        // Shuffle so that record order cannot be what keeps patients together.
        new Random(3).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(recs));
        return new CxrDataset("syn", "", recs);
    }

    [Fact]
    public void Patient_split_has_no_leakage_is_deterministic_and_follows_fractions()
    {
        var ds = Synthetic(1000, 3);
        var s = ds.SplitByPatient(seed: 7, new SplitFractions(0.7, 0.15, 0.15));
        Assert.Equal(ds.Count, s.Train.Count + s.Validation.Count + s.Test.Count);
        var tr = s.Train.Select(r => r.PatientId).ToHashSet();
        var va = s.Validation.Select(r => r.PatientId).ToHashSet();
        var te = s.Test.Select(r => r.PatientId).ToHashSet();
        Assert.Empty(tr.Intersect(va));
        Assert.Empty(tr.Intersect(te));
        Assert.Empty(va.Intersect(te));
        Assert.InRange(tr.Count, 650, 750);
        Assert.InRange(va.Count, 110, 190);

        var again = Synthetic(1000, 3).SplitByPatient(seed: 7, new SplitFractions(0.7, 0.15, 0.15));
        Assert.Equal(te, again.Test.Select(r => r.PatientId).ToHashSet());
        var other = ds.SplitByPatient(seed: 8, new SplitFractions(0.7, 0.15, 0.15));
        Assert.NotEqual(te, other.Test.Select(r => r.PatientId).ToHashSet());
        Assert.Throws<ArgumentException>(() => ds.SplitByPatient(0, new SplitFractions(0.5, 0.1, 0.1)));
    }

    [Fact]
    public void Label_policies_follow_chexpert_u_zeros_u_ones_and_ignore()
    {
        var l = new CxrLabels { [Observation.Edema] = Mention.Uncertain, [Observation.Atelectasis] = Mention.Positive, [Observation.Fracture] = Mention.Negative };
        var (v0, w0) = CxrBatching.LabelRow(l, new BatchOptions());
        Assert.Equal(0f, v0[(int)Observation.Edema]); Assert.Equal(1f, w0[(int)Observation.Edema]);
        var (v1, _) = CxrBatching.LabelRow(l, new BatchOptions { Uncertain = UncertainPolicy.Ones });
        Assert.Equal(1f, v1[(int)Observation.Edema]);
        var (_, wi) = CxrBatching.LabelRow(l, new BatchOptions { Uncertain = UncertainPolicy.Ignore, NotMentioned = NotMentionedPolicy.Ignore });
        Assert.Equal(0f, wi[(int)Observation.Edema]);
        Assert.Equal(0f, wi[(int)Observation.Pneumonia]);
        Assert.Equal(1f, wi[(int)Observation.Fracture]);
        Assert.Equal(1f, wi[(int)Observation.Atelectasis]);
    }

    [Fact]
    public void Batches_have_shapes_ranges_labels_and_masks()
    {
        var ds = GenericCsvLoader.Load(Fixtures.Generic());
        using var scope = NewDisposeScope();
        var batches = ds.Batches(3, new BatchOptions { Size = 16, Range = PixelRange.MinusOneToOne, MaskNames = ["mask", "left_lung"] }).ToList();
        Assert.Equal(2, batches.Count);
        var b = batches[0];
        Assert.Equal(new long[] { 3, 1, 16, 16 }, b.Images.shape);
        Assert.Equal(new long[] { 3, 14 }, b.Labels.shape);
        Assert.Equal(new long[] { 3, 2, 16, 16 }, b.Masks!.shape);
        Assert.True(b.Images.min().item<float>() >= -1f && b.Images.max().item<float>() <= 1f);
        Assert.True(b.Images.min().item<float>() < -0.5f); // [-1,1] really used, not [0,1]
        Assert.Equal(1f, b.Labels[0, (int)Observation.PleuralEffusion].item<float>());
        Assert.Equal(0f, b.Labels[0, (int)Observation.Edema].item<float>());
        Assert.Equal(new float[] { 0, 0, 0, 0, 1, 1 }, b.MaskPresent!.data<float>().ToArray());
        Assert.Equal(0f, b.Masks[0].abs().sum().item<float>());
        Assert.True(b.Masks[2, 0].sum().item<float>() > 0);
        Assert.Equal(1, batches[1].Images.shape[0]);
        var shuffled = ds.Batches(4, new BatchOptions { Size = 8 }, shuffleSeed: 1).Single();
        var shuffled2 = ds.Batches(4, new BatchOptions { Size = 8 }, shuffleSeed: 1).Single();
        Assert.Equal(shuffled.Records.Select(r => r.Id), shuffled2.Records.Select(r => r.Id));
        Assert.Equal(ds.Select(r => r.Id).Order(), shuffled.Records.Select(r => r.Id).Order());
    }

    [Fact]
    public void Augmented_batches_are_reproducible_and_flip_moves_masks_and_report_sides()
    {
        var ds = GenericCsvLoader.Load(Fixtures.Generic());
        var tb = ds.Where(r => r.Masks.Count > 0);
        using var scope = NewDisposeScope();
        var plain = CxrBatching.Collate(tb, tb.ToList(), new BatchOptions { Size = 8, MaskNames = ["left_lung", "right_lung"] });
        var flipOpts = new BatchOptions { Size = 8, MaskNames = ["left_lung", "right_lung"], Augment = new LateralityFlip(1.0), AugmentSeed = 3 };
        var flipped = CxrBatching.Collate(tb, tb.ToList(), flipOpts);
        Assert.Equal("small left pleural effusion, no pneumothorax. effusion.", plain.Reports[0]);
        Assert.Equal("small right pleural effusion, no pneumothorax. effusion.", flipped.Reports[0]);
        Assert.Equal(new float[] { 1, 0 }, plain.MaskPresent!.data<float>().ToArray());
        Assert.Equal(new float[] { 0, 1 }, flipped.MaskPresent!.data<float>().ToArray());
        Assert.True(plain.Masks![0, 0].flip(-1).eq(flipped.Masks![0, 1]).all().item<bool>());
        Assert.True(plain.Images.flip(-1).allclose(flipped.Images));

        var jitter = flipOpts with { Augment = new Compose(new RandomRotation(20), new GaussianNoise(0.05, 0.1, 1)) };
        var a = CxrBatching.Collate(ds, ds.ToList(), jitter);
        var b = CxrBatching.Collate(ds, ds.Reverse().ToList(), jitter); // order must not matter
        Assert.True(a.Images[0].eq(b.Images[3]).all().item<bool>());
        var c = CxrBatching.Collate(ds, ds.ToList(), jitter with { AugmentSeed = 4 });
        Assert.False(a.Images[0].eq(c.Images[0]).all().item<bool>());
    }
}
