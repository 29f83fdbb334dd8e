using RoentGen.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Data;

public class ImageTensorsTests
{
    private static GrayImage Ramp(int w, int h, int offset = 0) =>
        new(w, h, Enumerable.Range(0, w * h).Select(i => ((i + offset) % 256) / 255f).ToArray());

    [Fact]
    public void ToTensor_maps_0_1_to_the_requested_range_as_1_H_W()
    {
        using var scope = NewDisposeScope();
        var img = new GrayImage(3, 2, [0f, 0.5f, 1f, 0.25f, 0.75f, 1f]);
        var t = ImageTensors.ToTensor(img, -1f, 1f);
        Assert.Equal(new long[] { 1, 2, 3 }, t.shape);
        Assert.Equal(ScalarType.Float32, t.dtype);
        Assert.Equal(new[] { -1f, 0f, 1f, -0.5f, 0.5f, 1f }, t.data<float>().ToArray());
        var u = ImageTensors.ToTensor(img, 0f, 255f);
        Assert.Equal(127.5f, u[0, 0, 1].item<float>());
    }

    [Fact]
    public void FromTensor_round_trips_and_clamps_out_of_range_values()
    {
        using var scope = NewDisposeScope();
        var img = Ramp(16, 16);
        var back = ImageTensors.FromTensor(ImageTensors.ToTensor(img));
        Assert.Equal(ImageIO.EncodePng(img), ImageIO.EncodePng(back)); // same 8-bit values
        for (int i = 0; i < img.Pixels.Length; i++) Assert.Equal(img.Pixels[i], back.Pixels[i], 1e-6f);

        var wild = tensor(new[] { -3f, -1f, 0f, 1f, 7f, float.NaN }).reshape(2, 3); // (H, W)
        var clamped = ImageTensors.FromTensor(wild);
        Assert.Equal(new[] { 0f, 0f, 0.5f, 1f, 1f, 0f }, clamped.Pixels);
        Assert.Equal((3, 2), (clamped.Width, clamped.Height));
    }

    [Fact]
    public void FromTensor_rejects_other_shapes_naming_the_shape()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => ImageTensors.FromTensor(zeros(3, 4, 5)));
        Assert.Contains("[3, 4, 5]", e.Message);
    }

    [Fact]
    public void Stack_and_Unstack_are_inverse_and_shaped_B_1_H_W()
    {
        using var scope = NewDisposeScope();
        var imgs = new[] { Ramp(8, 4, 0), Ramp(8, 4, 50), Ramp(8, 4, 100) };
        var batch = ImageTensors.Stack(imgs, 0f, 1f);
        Assert.Equal(new long[] { 3, 1, 4, 8 }, batch.shape);
        Assert.Equal(imgs[1][2, 3], batch[1, 0, 3, 2].item<float>());
        var back = ImageTensors.Unstack(batch, 0f, 1f);
        Assert.Equal(3, back.Length);
        for (int b = 0; b < 3; b++) Assert.Equal(imgs[b].Pixels, back[b].Pixels);
    }

    [Fact]
    public void Stack_refuses_mixed_sizes_naming_the_image()
    {
        var e = Assert.Throws<ArgumentException>(() => ImageTensors.Stack([Ramp(8, 4), Ramp(8, 4), Ramp(4, 4)]));
        Assert.Contains("image 2 is 4x4", e.Message);
    }

    [Fact]
    public void Conversions_leave_no_tensors_behind_in_the_callers_scope()
    {
        using var outer = NewDisposeScope();
        var t = ImageTensors.ToTensor(Ramp(8, 8));
        long before = outer.DisposablesCount;
        _ = ImageTensors.FromTensor(t);
        _ = ImageTensors.Unstack(t.unsqueeze(0));
        Assert.Equal(before + 1, outer.DisposablesCount); // only the unsqueeze result
        Assert.False(t.IsInvalid);
    }
}
