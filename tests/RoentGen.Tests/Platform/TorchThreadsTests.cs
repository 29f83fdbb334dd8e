using RoentGen.Platform;

namespace RoentGen.Tests.Platform;

[Collection(ProcessStateCollection.Name)]
public class TorchThreadsTests
{
    [Fact]
    public void Thread_counts_outside_1_to_four_per_cpu_are_refused_and_leave_libtorch_as_it_was()
    {
        int before = TorchSharp.torch.get_num_threads();
        foreach (var bad in new[] { 100000, 0, -1, 4 * Environment.ProcessorCount + 1 })
        {
            var e = Assert.Throws<ArgumentException>(() => TorchThreads.Set(bad));
            Assert.Contains($"threads must be 1 to {4 * Environment.ProcessorCount}", e.Message);
            Assert.Contains($"got {bad}", e.Message);
            Assert.Equal(before, TorchSharp.torch.get_num_threads());
        }
        TorchThreads.Set(before);
        Assert.Equal(before, TorchSharp.torch.get_num_threads());
    }
}
