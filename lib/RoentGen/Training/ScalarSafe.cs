using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Training;

/// <summary>Drop-in replacements for TorchSharp classes that let a collected scalar fail a native call.</summary>
public static class ScalarSafe
{
    /// <summary>
    /// TorchSharp's AdamW (same update, same state, same checkpoints) with every scalar operand held until its native call
    /// returns.
    /// <para>Why: in TorchSharp 0.107 an operation such as <c>t.mul_(0.9)</c> converts the number to a
    /// <see cref="Scalar"/> object, passes its native handle, and no longer refers to the object; when a garbage collection
    /// happens during the call (another thread or the finalizer thread allocating), the Scalar's finalizer frees the native
    /// scalar while libtorch reads it, and the call fails with "Expected false to be true ... toDouble" or "Unknown scalar
    /// type". TorchSharp's own AdamW makes eight such scalars per parameter tensor per step, by far the most of a training
    /// step, and a 1,500-step LDM run stopped on it (s23; a loop of t.mul_(1.0) beside a thread that collects without
    /// pause fails within a second; the same pressure can crash the process through tensors too, so no test runs it).
    /// Here each scalar is made once per group and step, and disposed only after the last call that uses it, which keeps
    /// it alive. Other implicit scalars of the library (model code, square() in losses) remain, far fewer per step.</para>
    /// <para>The arithmetic is TorchSharp's, operation for operation (a test checks equal weights after several steps), so
    /// runs are as before; only the failure goes. Its type is named AdamW, as TorchSharp writes the type name into the
    /// optimizer's saved state and checks it on loading, so the two share saved states and run folders written before
    /// this class resume (a test loads this one's state into TorchSharp's; the other direction is not tested).</para>
    /// </summary>
    public sealed class AdamW : TorchSharp.Modules.AdamW
    {
        /// <summary>AdamW over parameter groups (their options, and these defaults where a group sets none).</summary>
        public AdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
            : base(groups, lr, beta1, beta2, eps, weight_decay) { }

        /// <summary>AdamW over one group of parameters.</summary>
        public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
            : base([new ParamGroup { Parameters = parameters }], lr, beta1, beta2, eps, weight_decay) { }

        /// <inheritdoc />
        /// <exception cref="NotSupportedException">A group asks for AMSGrad or maximize, which this optimizer does not implement.</exception>
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var o = (Options)group.Options;
            if (o.amsgrad == true || o.maximize == true)
                throw new NotSupportedException("ScalarSafe.AdamW implements neither AMSGrad nor maximize; use torch.optim.AdamW for them");
            double lr = o.LearningRate!.Value, beta1 = o.beta1!.Value, beta2 = o.beta2!.Value, wd = o.weight_decay!.Value;
            using var decay = (1 - lr * wd).ToScalar();
            using var b1 = beta1.ToScalar();
            using var oneMinusB1 = (1 - beta1).ToScalar();
            using var b2 = beta2.ToScalar();
            using var oneMinusB2 = (1 - beta2).ToScalar();
            using var eps = o.eps!.Value.ToScalar();
            using var one = 1.0.ToScalar();   // add_(Scalar) alone would make its alpha of 1 implicitly
            foreach (var param in group.Parameters)
            {
                var grad = param.grad;   // the step's dispose scope releases this handle
                if (grad is null) continue;
                var state = (State)_state[param.Handle];
                state.step += 1;
                param.mul_(decay);
                double correction1 = 1 - Math.Pow(beta1, state.step), correction2 = 1 - Math.Pow(beta2, state.step);
                state.exp_avg.mul_(b1).add_(grad, alpha: oneMinusB1);
                state.exp_avg_sq.mul_(b2).addcmul_(grad, grad, value: oneMinusB2);
                using var root = Math.Sqrt(correction2).ToScalar();
                using var stepSize = (-(lr / correction1)).ToScalar();
                using var sqrt = state.exp_avg_sq.sqrt();
                using var denominator = sqrt.div(root).add_(eps, one);
                param.addcdiv_(state.exp_avg, denominator, value: stepSize);
            }
        }, closure);
    }
}
