using System.Diagnostics;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Store;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Agent.Engine;

/// <summary>One model this node should hold, as a spec entry names it.</summary>
/// <param name="StatusKey">KServe's status key: <c>modelName</c>, or <c>{namespace}/{modelName}</c>.</param>
/// <param name="Uri">The source URI (its hash is the storage key).</param>
/// <param name="Filter">allowPatterns / ignorePatterns from the storage parameters.</param>
/// <param name="Settings">Credentials and endpoints resolved for this entry.</param>
internal sealed record ModelSpec(string StatusKey, string Uri, FileFilter Filter, SourceSettings Settings)
{
    public string StorageKey { get; } = Api.StorageKey.Compute(Uri);
}

/// <summary>KServe's ModelStatus enum strings (<see cref="Api.V1Alpha1.ModelStatus"/>) the agent reports; never empty.</summary>
internal static class ModelStates
{
    public const string Pending = Api.V1Alpha1.ModelStatus.ModelDownloadPending;
    public const string Downloading = Api.V1Alpha1.ModelStatus.ModelDownloading;
    public const string Downloaded = Api.V1Alpha1.ModelStatus.ModelDownloaded;
    public const string Error = Api.V1Alpha1.ModelStatus.ModelDownloadError;

    public static readonly string[] All = [Pending, Downloading, Downloaded, Error];
}

/// <summary>The state of one status key, for status writers, the status view and metrics.</summary>
internal sealed record ModelStatusView(
    string StatusKey, string Uri, string StorageKey, string State, long BytesDone, long? BytesTotal,
    string? Reason, string? Message, DateTimeOffset UpdatedAt, string Path);

/// <summary>
/// The cache engine shared by Kubernetes and standalone mode: given the desired models, it makes
/// <c>{root}/models/{storageKey}</c> hold each complete model (downloads as background jobs, a bounded number
/// at once), deletes what is no longer desired, re-verifies the disk periodically, and publishes a
/// snapshot with KServe's states plus progress. Level-triggered: every pass recomputes from desired
/// state and disk.
/// </summary>
internal sealed partial class CacheEngine : IDisposable
{
    private readonly ModelStore _store;
    private readonly ModelFetcher _fetcher;
    private readonly DownloadOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<CacheEngine> _logger;
    private readonly SemaphoreSlim _slots;
    private readonly SemaphoreSlim _kick = new(0);
    private readonly Lock _lock = new();
    private readonly Dictionary<string, KeyJob> _jobs = new(StringComparer.Ordinal);
    private List<ModelSpec> _desired = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private DateTimeOffset _lastVerify = DateTimeOffset.MinValue;

    public CacheEngine(ModelStore store, ModelFetcher fetcher, DownloadOptions options, TimeProvider time, ILogger<CacheEngine> logger)
    {
        _store = store;
        _fetcher = fetcher;
        _options = options;
        _time = time;
        _logger = logger;
        _slots = new SemaphoreSlim(options.MaxConcurrentModels);
    }

    public ModelStore Store => _store;

    /// <summary>The most the cache may hold (a node group's storageLimit), or null for the disk's size.</summary>
    public long? StorageLimitBytes { get; set; }

    /// <summary>How often complete models are checked against their manifests.</summary>
    public TimeSpan VerifyInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>First retry delay of a failed model (doubling up to <see cref="MaxErrorRetryDelay"/>).</summary>
    public TimeSpan ErrorRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan MaxErrorRetryDelay { get; set; } = TimeSpan.FromMinutes(30);

    public bool Started { get; private set; }

    /// <summary>Completes at the next state change (not at every progress byte).</summary>
    public Task NextChange
    {
        get
        {
            lock (_lock)
            {
                return _changed.Task;
            }
        }
    }

    private sealed class KeyJob(ModelSpec spec)
    {
        public ModelSpec Spec { get; set; } = spec;
        public string State { get; set; } = ModelStates.Pending;
        public FailureReason? Reason { get; set; }
        public string? Message { get; set; }
        public ProgressCounter Progress { get; } = new();
        public CancellationTokenSource? Cts { get; set; }
        public Task? Task { get; set; }
        public int Failures { get; set; }
        public DateTimeOffset RetryAt { get; set; }
        public DateTimeOffset UpdatedAt { get; set; }
        public bool Removed { get; set; }
    }

    /// <summary>Replaces the desired models and wakes the engine.</summary>
    public void SetDesired(IReadOnlyList<ModelSpec> specs)
    {
        lock (_lock)
        {
            _desired = [.. specs];
        }
        Kick();
    }

    public void Kick() => _kick.Release();

    /// <summary>The engine loop: a pass on every kick and at least every verify interval.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        Started = true;
        Task? kick = null;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    Reconcile();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    LogPassFailed(_logger, e.Message);
                }
                // The pending kick wait is kept across passes so that no release is lost to an abandoned waiter.
                kick ??= _kick.WaitAsync(ct);
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(ct);
                await Task.WhenAny(kick, Task.Delay(VerifyInterval, _time, tick.Token)).ConfigureAwait(false);
                await tick.CancelAsync().ConfigureAwait(false);
                if (ct.IsCancellationRequested)
                {
                    break;
                }
                if (kick.IsCompleted)
                {
                    kick = null;
                }
            }
        }
        finally
        {
            List<Task> running;
            lock (_lock)
            {
                foreach (var j in _jobs.Values)
                {
                    j.Cts?.Cancel();
                }
                running = _jobs.Values.Select(j => j.Task).OfType<Task>().ToList();
            }
            try
            {
                await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException)
            {
            }
        }
    }

    /// <summary>One level-triggered pass.</summary>
    internal void Reconcile()
    {
        var now = _time.GetUtcNow();
        var verify = now - _lastVerify >= VerifyInterval;
        if (verify)
        {
            _lastVerify = now;
        }
        var changed = false;
        lock (_lock)
        {
            // KServe's dedup: entries with the same URI share one folder and one job; the first entry's settings win.
            var byKey = new Dictionary<string, ModelSpec>(StringComparer.Ordinal);
            foreach (var s in _desired)
            {
                byKey.TryAdd(s.StorageKey, s);
            }
            foreach (var (key, job) in _jobs.ToList())
            {
                if (!byKey.ContainsKey(key))
                {
                    job.Removed = true;
                    job.Cts?.Cancel();
                    _jobs.Remove(key);
                    changed = true;
                }
            }
            foreach (var (key, spec) in byKey)
            {
                if (!_jobs.TryGetValue(key, out var job))
                {
                    job = new KeyJob(spec) { UpdatedAt = now };
                    _jobs[key] = job;
                    changed = true;
                }
                var specChanged = job.Spec.Filter.ToString() != spec.Filter.ToString() || !job.Spec.Settings.SameAs(spec.Settings);
                job.Spec = spec;
                if (job.Task is { IsCompleted: false })
                {
                    continue;
                }
                if (_store.GetManifest(key) is not null)
                {
                    if (verify && _store.CheckIntact(key) is { } problem)
                    {
                        LogNotIntact(_logger, key, problem);
                        _store.Remove(key);
                    }
                    else
                    {
                        changed |= Set(job, ModelStates.Downloaded, null, null, now);
                        continue;
                    }
                }
                if (job.State == ModelStates.Error && now < job.RetryAt && !specChanged)
                {
                    continue;
                }
                changed |= Set(job, ModelStates.Pending, job.Reason, job.Message, now);
                job.Cts = new CancellationTokenSource();
                var j = job;
                job.Task = Task.Run(() => RunJobAsync(j, j.Cts.Token));
            }
            var busy = _jobs.Where(kv => kv.Value.Task is { IsCompleted: false }).Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal);
            var freed = _store.CollectGarbage(byKey.Keys.ToHashSet(StringComparer.Ordinal), busy);
            if (freed > 0)
            {
                AgentMetrics.GcBytes.Inc(freed);
                LogCollected(_logger, freed);
            }
        }
        UpdateGauges();
        if (changed)
        {
            SignalChanged();
        }
    }

    private async Task RunJobAsync(KeyJob job, CancellationToken ct)
    {
        var key = job.Spec.StorageKey;
        try
        {
            await _slots.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        var started = Stopwatch.GetTimestamp();
        StagingArea? staging = null;
        try
        {
            SetAndSignal(job, ModelStates.Downloading, null, null);
            staging = _store.OpenStaging(key);
            long? maxBytes = StorageLimitBytes is { } limit ? limit - UsedByOthers(key) : null;
            LogStarting(_logger, key, ModelFetcher.SafeUri(job.Spec.Uri));
            var files = await _fetcher.FetchAsync(new FetchRequest(job.Spec.Uri, key, job.Spec.Filter, job.Spec.Settings, maxBytes),
                staging, _store.Io, _store.AvailableFreeSpace, job.Progress, ct).ConfigureAwait(false);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            lock (_lock)
            {
                if (job.Removed)
                {
                    staging.Delete();
                    return;
                }
                _store.Commit(staging, new ModelManifest
                {
                    StorageKey = key,
                    SourceUri = ModelFetcher.SafeUri(job.Spec.Uri),
                    TotalBytes = files.Sum(f => f.Size),
                    CompletedAt = _time.GetUtcNow(),
                    DurationSeconds = seconds,
                    Files = files,
                });
                job.Failures = 0;
            }
            AgentMetrics.DownloadDuration.Observe(seconds);
            LogDownloaded(_logger, key, files.Sum(f => f.Size), seconds);
            SetAndSignal(job, ModelStates.Downloaded, null, null);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Removed from the spec or shutting down: a removed key's staging is collected by the next pass.
        }
        catch (Exception e)
        {
            var (reason, message) = e is DownloadException d ? (d.Reason, d.Message)
                : e is IOException io && DiskErrors.IsDiskFull(io) ? (FailureReason.DiskFull, "disk full: no space left on device")
                : (FailureReason.IoError, e.Message);
            if (reason is FailureReason.DiskFull or FailureReason.InsufficientStorage or FailureReason.StorageLimitExceeded)
            {
                // Give the space back to the models that fit.
                staging?.Delete();
            }
            AgentMetrics.DownloadFailures.WithLabels(reason.ToString()).Inc();
            LogFailed(_logger, key, reason.ToString(), message);
            lock (_lock)
            {
                job.Failures++;
                var delay = TimeSpan.FromTicks(Math.Min(MaxErrorRetryDelay.Ticks, ErrorRetryDelay.Ticks * (1L << Math.Min(20, job.Failures - 1))));
                job.RetryAt = _time.GetUtcNow() + delay;
            }
            SetAndSignal(job, ModelStates.Error, reason, message);
            // Wake the loop at retry time.
            _ = Task.Delay(ErrorRetryDelay * (1L << Math.Min(20, job.Failures - 1)), _time, CancellationToken.None).ContinueWith(_ => Kick(), TaskScheduler.Default);
        }
        finally
        {
            _slots.Release();
        }
    }

    private long UsedByOthers(string key) =>
        _store.Manifests().Where(m => m.StorageKey != key).Sum(m => m.TotalBytes);

    private static bool Set(KeyJob job, string state, FailureReason? reason, string? message, DateTimeOffset now)
    {
        if (job.State == state && job.Reason == reason && job.Message == message)
        {
            return false;
        }
        job.State = state;
        job.Reason = reason;
        job.Message = message;
        job.UpdatedAt = now;
        return true;
    }

    private void SetAndSignal(KeyJob job, string state, FailureReason? reason, string? message)
    {
        bool changed;
        lock (_lock)
        {
            changed = !job.Removed && Set(job, state, reason, message, _time.GetUtcNow());
        }
        if (changed)
        {
            UpdateGauges();
            SignalChanged();
        }
    }

    private void SignalChanged()
    {
        TaskCompletionSource old;
        lock (_lock)
        {
            old = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        old.TrySetResult();
    }

    /// <summary>One view per desired status key (several keys may share one storage key).</summary>
    public IReadOnlyList<ModelStatusView> Snapshot()
    {
        lock (_lock)
        {
            var list = new List<ModelStatusView>();
            foreach (var s in _desired)
            {
                if (!_jobs.TryGetValue(s.StorageKey, out var j))
                {
                    list.Add(new ModelStatusView(s.StatusKey, ModelFetcher.SafeUri(s.Uri), s.StorageKey, ModelStates.Pending, 0, null, null, null, _time.GetUtcNow(), _store.ModelPath(s.StorageKey)));
                    continue;
                }
                long done = j.Progress.Done;
                long? total = j.Progress.Total;
                if (j.State == ModelStates.Downloaded && _store.GetManifest(s.StorageKey) is { } m)
                {
                    done = m.TotalBytes;
                    total = m.TotalBytes;
                }
                list.Add(new ModelStatusView(s.StatusKey, ModelFetcher.SafeUri(s.Uri), s.StorageKey, j.State, done, total,
                    j.Reason?.ToString(), j.Message, j.UpdatedAt, _store.ModelPath(s.StorageKey)));
            }
            return list;
        }
    }

    /// <summary>Waits until the snapshot satisfies <paramref name="predicate"/>.</summary>
    public async Task<IReadOnlyList<ModelStatusView>> WaitForAsync(Func<IReadOnlyList<ModelStatusView>, bool> predicate, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            var next = NextChange;
            var snap = Snapshot();
            if (predicate(snap))
            {
                return snap;
            }
            try
            {
                await next.WaitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("the expected state was not reached; last: " + string.Join("; ", Snapshot().Select(v => $"{v.StatusKey}={v.State} {v.Message}")));
            }
        }
    }

    private void UpdateGauges()
    {
        var snap = Snapshot();
        foreach (var s in ModelStates.All)
        {
            AgentMetrics.Models.WithLabels(s).Set(snap.Count(v => v.State == s));
        }
        try
        {
            var used = _store.UsedBytes();
            var free = _store.AvailableFreeSpace();
            AgentMetrics.CacheUsedBytes.Set(used);
            AgentMetrics.CacheFreeBytes.Set(free);
            AgentMetrics.CacheCapacityBytes.Set(StorageLimitBytes ?? new DriveInfo(_store.Root).TotalSize);
        }
        catch (IOException)
        {
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var j in _jobs.Values)
            {
                j.Cts?.Cancel();
                j.Cts?.Dispose();
            }
        }
        _slots.Dispose();
        _kick.Dispose();
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Downloading {StorageKey} from {Uri}")]
    private static partial void LogStarting(ILogger logger, string storageKey, string uri);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Downloaded {StorageKey}: {Bytes} bytes in {Seconds:0.0} s")]
    private static partial void LogDownloaded(ILogger logger, string storageKey, long bytes, double seconds);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Download of {StorageKey} failed ({Reason}): {Message}")]
    private static partial void LogFailed(ILogger logger, string storageKey, string reason, string message);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "Model {StorageKey} is no longer intact ({Problem}); downloading it again")]
    private static partial void LogNotIntact(ILogger logger, string storageKey, string problem);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Collected {Bytes} bytes of models no longer listed")]
    private static partial void LogCollected(ILogger logger, long bytes);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Error, Message = "Cache pass failed: {Message}")]
    private static partial void LogPassFailed(ILogger logger, string message);
}
