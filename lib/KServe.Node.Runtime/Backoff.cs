namespace KServe.Node.Runtime;

/// <summary>Jittered exponential backoff for reconnects: each delay doubles up to a cap, plus up to 50 % random jitter.</summary>
internal sealed class Backoff
{
    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private TimeSpan _next;

    public Backoff(TimeSpan initial, TimeSpan max)
    {
        _initial = initial;
        _max = max;
        _next = initial;
    }

    public TimeSpan Next()
    {
        var current = _next;
        _next = TimeSpan.FromTicks(Math.Min(_max.Ticks, current.Ticks * 2));
#pragma warning disable CA5394 // Jitter only spreads reconnects; it needs no cryptographic randomness.
        return current + TimeSpan.FromTicks((long)(current.Ticks * 0.5 * Random.Shared.NextDouble()));
#pragma warning restore CA5394
    }

    public void Reset() => _next = _initial;
}
