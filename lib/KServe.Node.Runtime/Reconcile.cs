namespace KServe.Node.Runtime;

/// <summary>What a reconcile asks of the controller afterwards.</summary>
public readonly record struct ReconcileResult
{
    private ReconcileResult(TimeSpan? requeueAfter) => Requeue = requeueAfter;

    /// <summary>Converged: forget the key's failure history and wait for the next event.</summary>
    public static ReconcileResult Done { get; }

    /// <summary>Converged for now, but look again after <paramref name="delay"/> (polling external state).</summary>
    public static ReconcileResult RequeueAfter(TimeSpan delay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        return new ReconcileResult(delay);
    }

    /// <summary>The delay before the key is reconciled again, or null when done.</summary>
    public TimeSpan? Requeue { get; }

    /// <inheritdoc />
    public override string ToString() => Requeue is { } d ? $"RequeueAfter({d})" : "Done";
}

/// <summary>
/// The reconcile contract: re-read the current state for <c>key</c> (it may be gone), make the world match it,
/// idempotently. Throwing requeues the key with per-key exponential backoff, except <see cref="TerminalException"/>.
/// </summary>
public interface IReconciler
{
    /// <summary>Reconciles one object. Called for one key by at most one worker at a time.</summary>
    Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct);
}

/// <summary>
/// A reconcile error that retrying cannot fix (invalid spec, unsupported input): logged, not retried until the
/// object changes again.
/// </summary>
public sealed class TerminalException : Exception
{
    public TerminalException()
    {
    }

    public TerminalException(string message) : base(message)
    {
    }

    public TerminalException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
