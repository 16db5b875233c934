namespace KServe.Node.Runtime;

/// <summary>
/// A work queue of keys with client-go's guarantees: a key queued twice before it is taken is processed once
/// (duplicates collapse); a key is never handed to two workers at once (re-adding a key that is being processed
/// queues it again only after <see cref="Done"/>); delayed and rate-limited adds.
/// </summary>
/// <remarks>
/// Workers loop: <see cref="GetAsync"/>, process, then <see cref="Forget"/> on success or
/// <see cref="AddRateLimited"/> on failure, and always <see cref="Done"/>.
/// </remarks>
public sealed class WorkQueue<TKey> : IDisposable
    where TKey : notnull
{
    private readonly Lock _lock = new();
    private readonly Queue<TKey> _queue = new();
    private readonly HashSet<TKey> _dirty = [];
    private readonly HashSet<TKey> _processing = [];
    private readonly Queue<TaskCompletionSource<(TKey, bool)>> _waiters = new();
    private readonly PriorityQueue<TKey, long> _delayed = new();
    private readonly Dictionary<TKey, long> _delayedDue = [];
    private readonly TimeProvider _time;
    private readonly IRateLimiter<TKey> _rateLimiter;
    private readonly ITimer _timer;
    private long _timerDue = long.MaxValue;
    private bool _shutdown;

    /// <summary>Creates a queue with the given rate limiter (default: <see cref="RateLimiters.Default{TKey}"/>).</summary>
    public WorkQueue(IRateLimiter<TKey>? rateLimiter = null, TimeProvider? timeProvider = null)
    {
        _time = timeProvider ?? TimeProvider.System;
        _rateLimiter = rateLimiter ?? RateLimiters.Default<TKey>(_time);
        _timer = _time.CreateTimer(static s => ((WorkQueue<TKey>)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Keys waiting to be taken (not counting delayed or in-process ones).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Keys scheduled for later by <see cref="AddAfter"/> or <see cref="AddRateLimited"/>.</summary>
    public int DelayedCount
    {
        get
        {
            lock (_lock)
            {
                return _delayedDue.Count;
            }
        }
    }

    /// <summary>True once <see cref="ShutDown"/> was called.</summary>
    public bool IsShutDown
    {
        get
        {
            lock (_lock)
            {
                return _shutdown;
            }
        }
    }

    /// <summary>Queues <paramref name="key"/> now, unless it is already queued.</summary>
    public void Add(TKey key)
    {
        lock (_lock)
        {
            AddLocked(key);
        }
    }

    /// <summary>Queues <paramref name="key"/> after <paramref name="delay"/>; an earlier pending schedule wins.</summary>
    public void AddAfter(TKey key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(key);
            return;
        }

        lock (_lock)
        {
            if (_shutdown)
            {
                return;
            }

            var due = _time.GetUtcNow().UtcTicks + delay.Ticks;
            if (_delayedDue.TryGetValue(key, out var existing) && existing <= due)
            {
                return;
            }

            _delayedDue[key] = due;
            _delayed.Enqueue(key, due);
            ArmTimerLocked();
        }
    }

    /// <summary>Queues <paramref name="key"/> after the delay its rate limiter asks for (one more failure).</summary>
    public void AddRateLimited(TKey key) => AddAfter(key, _rateLimiter.When(key));

    /// <summary>Clears the failure history of <paramref name="key"/>; call after a successful process.</summary>
    public void Forget(TKey key) => _rateLimiter.Forget(key);

    /// <summary>How many times <paramref name="key"/> was rate limited since it was last forgotten.</summary>
    public int NumRequeues(TKey key) => _rateLimiter.NumRequeues(key);

    /// <summary>
    /// Waits for a key and marks it in process. Returns <c>Shutdown = true</c> once the queue is shut down.
    /// </summary>
    public ValueTask<(TKey Key, bool Shutdown)> GetAsync(CancellationToken ct = default)
    {
        TaskCompletionSource<(TKey, bool)> waiter;
        lock (_lock)
        {
            if (_queue.TryDequeue(out var key))
            {
                _dirty.Remove(key);
                _processing.Add(key);
                return ValueTask.FromResult((key, false));
            }

            if (_shutdown)
            {
                return ValueTask.FromResult((default(TKey)!, true));
            }

            ct.ThrowIfCancellationRequested();
            waiter = new TaskCompletionSource<(TKey, bool)>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue(waiter);
        }

        return WaitAsync(waiter, ct);
    }

    private static async ValueTask<(TKey, bool)> WaitAsync(TaskCompletionSource<(TKey, bool)> waiter, CancellationToken ct)
    {
        await using var reg = ct.Register(static s => ((TaskCompletionSource<(TKey, bool)>)s!).TrySetCanceled(), waiter).ConfigureAwait(false);
        return await waiter.Task.ConfigureAwait(false);
    }

    /// <summary>Marks <paramref name="key"/> processed; if it was added meanwhile it is queued again now.</summary>
    public void Done(TKey key)
    {
        lock (_lock)
        {
            _processing.Remove(key);
            if (_dirty.Contains(key))
            {
                EnqueueLocked(key);
            }
        }
    }

    /// <summary>Stops the queue: waiting and future <see cref="GetAsync"/> calls return <c>Shutdown = true</c>.</summary>
    public void ShutDown()
    {
        TaskCompletionSource<(TKey, bool)>[] waiters;
        lock (_lock)
        {
            if (_shutdown)
            {
                return;
            }

            _shutdown = true;
            waiters = [.. _waiters];
            _waiters.Clear();
            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        foreach (var w in waiters)
        {
            w.TrySetResult((default!, true));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        ShutDown();
        _timer.Dispose();
    }

    private void AddLocked(TKey key)
    {
        if (_shutdown || !_dirty.Add(key))
        {
            return;
        }

        if (_processing.Contains(key))
        {
            // Handed out again by Done(), so that one key never runs on two workers.
            return;
        }

        EnqueueLocked(key);
    }

    private void EnqueueLocked(TKey key)
    {
        while (_waiters.TryDequeue(out var waiter))
        {
            _dirty.Remove(key);
            _processing.Add(key);
            if (waiter.TrySetResult((key, false)))
            {
                return;
            }

            // That waiter was cancelled; undo and try the next.
            _processing.Remove(key);
            _dirty.Add(key);
        }

        _queue.Enqueue(key);
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            _timerDue = long.MaxValue;
            if (_shutdown)
            {
                return;
            }

            var now = _time.GetUtcNow().UtcTicks;
            while (_delayed.TryPeek(out var key, out var due) && due <= now)
            {
                _delayed.Dequeue();
                if (_delayedDue.TryGetValue(key, out var current) && current == due)
                {
                    _delayedDue.Remove(key);
                    AddLocked(key);
                }
            }

            ArmTimerLocked();
        }
    }

    private void ArmTimerLocked()
    {
        // Drop superseded entries so that the head is a live schedule.
        while (_delayed.TryPeek(out var key, out var due) && (!_delayedDue.TryGetValue(key, out var current) || current != due))
        {
            _delayed.Dequeue();
        }

        if (!_delayed.TryPeek(out _, out var next) || next >= _timerDue)
        {
            return;
        }

        _timerDue = next;
        var wait = TimeSpan.FromTicks(Math.Max(0, next - _time.GetUtcNow().UtcTicks));
        _timer.Change(wait, Timeout.InfiniteTimeSpan);
    }
}
