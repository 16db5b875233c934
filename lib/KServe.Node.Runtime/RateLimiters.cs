namespace KServe.Node.Runtime;

/// <summary>Decides how long a key waits before its next retry.</summary>
public interface IRateLimiter<in TKey>
    where TKey : notnull
{
    /// <summary>The delay before <paramref name="key"/> may be processed again; records one more failure.</summary>
    TimeSpan When(TKey key);

    /// <summary>Clears the failure history of <paramref name="key"/> (after a success).</summary>
    void Forget(TKey key);

    /// <summary>How many times <paramref name="key"/> has been rate limited since it was last forgotten.</summary>
    int NumRequeues(TKey key);
}

/// <summary>Per-key exponential backoff: <c>baseDelay * 2^failures</c>, capped at <c>maxDelay</c>.</summary>
public sealed class ExponentialRateLimiter<TKey> : IRateLimiter<TKey>
    where TKey : notnull
{
    private readonly Dictionary<TKey, int> _failures = [];
    private readonly Lock _lock = new();
    private readonly TimeSpan _baseDelay;
    private readonly TimeSpan _maxDelay;

    public ExponentialRateLimiter(TimeSpan baseDelay, TimeSpan maxDelay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(baseDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDelay, baseDelay);
        _baseDelay = baseDelay;
        _maxDelay = maxDelay;
    }

    /// <inheritdoc />
    public TimeSpan When(TKey key)
    {
        int failures;
        lock (_lock)
        {
            _failures.TryGetValue(key, out failures);
            _failures[key] = failures + 1;
        }

        // Doubles in floating point so that large failure counts saturate at the cap instead of overflowing.
        var ticks = _baseDelay.Ticks * Math.Pow(2, failures);
        return ticks >= _maxDelay.Ticks ? _maxDelay : TimeSpan.FromTicks((long)ticks);
    }

    /// <inheritdoc />
    public void Forget(TKey key)
    {
        lock (_lock)
        {
            _failures.Remove(key);
        }
    }

    /// <inheritdoc />
    public int NumRequeues(TKey key)
    {
        lock (_lock)
        {
            return _failures.TryGetValue(key, out var n) ? n : 0;
        }
    }
}

/// <summary>
/// An overall token bucket (<c>qps</c> refill, <c>burst</c> capacity) shared by all keys: bounds the retry rate
/// when many keys fail at once. Each call reserves one token; the delay is how long until that token exists.
/// </summary>
public sealed class TokenBucketRateLimiter<TKey> : IRateLimiter<TKey>
    where TKey : notnull
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly double _qps;
    private readonly double _burst;
    private double _tokens;
    private long _last;

    public TokenBucketRateLimiter(double qps, int burst, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(qps, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        _time = timeProvider ?? TimeProvider.System;
        _qps = qps;
        _burst = burst;
        _tokens = burst;
        _last = _time.GetTimestamp();
    }

    /// <inheritdoc />
    public TimeSpan When(TKey key)
    {
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            var elapsed = _time.GetElapsedTime(_last, now).TotalSeconds;
            _last = now;
            _tokens = Math.Min(_burst, _tokens + (elapsed * _qps)) - 1;
            return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / _qps);
        }
    }

    /// <inheritdoc />
    public void Forget(TKey key)
    {
    }

    /// <inheritdoc />
    public int NumRequeues(TKey key) => 0;
}

/// <summary>Combines limiters: the delay is the longest any of them asks for.</summary>
public sealed class MaxOfRateLimiter<TKey> : IRateLimiter<TKey>
    where TKey : notnull
{
    private readonly IRateLimiter<TKey>[] _limiters;

    public MaxOfRateLimiter(params IRateLimiter<TKey>[] limiters)
    {
        ArgumentNullException.ThrowIfNull(limiters);
        ArgumentOutOfRangeException.ThrowIfZero(limiters.Length);
        _limiters = limiters;
    }

    /// <inheritdoc />
    public TimeSpan When(TKey key)
    {
        var max = TimeSpan.Zero;
        foreach (var limiter in _limiters)
        {
            var d = limiter.When(key);
            if (d > max)
            {
                max = d;
            }
        }

        return max;
    }

    /// <inheritdoc />
    public void Forget(TKey key)
    {
        foreach (var limiter in _limiters)
        {
            limiter.Forget(key);
        }
    }

    /// <inheritdoc />
    public int NumRequeues(TKey key)
    {
        var max = 0;
        foreach (var limiter in _limiters)
        {
            max = Math.Max(max, limiter.NumRequeues(key));
        }

        return max;
    }
}

/// <summary>The controller defaults (client-go's): per-key 5 ms doubling to 1000 s, overall 10 qps with a burst of 100.</summary>
public static class RateLimiters
{
    /// <summary>Creates the default controller rate limiter.</summary>
    public static IRateLimiter<TKey> Default<TKey>(TimeProvider? timeProvider = null)
        where TKey : notnull =>
        new MaxOfRateLimiter<TKey>(
            new ExponentialRateLimiter<TKey>(TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1000)),
            new TokenBucketRateLimiter<TKey>(10, 100, timeProvider));
}
