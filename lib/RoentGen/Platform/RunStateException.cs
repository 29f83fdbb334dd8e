namespace RoentGen.Platform;

/// <summary>
/// A state of the user's files or run that stops a job and that the user can fix by choosing another folder, config or
/// data: a run folder that holds another config or more steps, a file where a run folder should be, an unfinished earlier
/// stage, a check with nothing to check, a loss that diverged. It derives from <see cref="InvalidOperationException"/>
/// (the operation is invalid in this state), so callers that catch that still catch it; front ends report it as a user
/// error, not as a bug, by its type.
/// </summary>
public sealed class RunStateException : InvalidOperationException
{
    /// <summary>Creates the exception with its message (which names the folder, file or run and what to do).</summary>
    public RunStateException(string message) : base(message) { }

    /// <summary>Creates the exception with its message and cause.</summary>
    public RunStateException(string message, Exception innerException) : base(message, innerException) { }
}
