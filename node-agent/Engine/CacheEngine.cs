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
/// at once), adopts matching folders it finds, deletes what has left the desired state for the grace period,
/// re-verifies the disk periodically, and publishes a snapshot with KServe's states plus progress.
/// Level-triggered: every pass recomputes from desired state and disk.
/// Nothing is deleted on an incomplete picture: until the first <see cref="SetDesired"/> the engine only
/// reports what is on disk, and a desired state marked incomplete starts downloads but collects nothing.
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
    private readonly Lock _gaugeLock = new();
    private readonly Dictionary<string, KeyJob> _jobs = new(StringComparer.Ordinal);
    // Jobs of keys that left the desired state while running: busy until their task ends, so that GC never
    // deletes a staging folder that a job still writes (and a re-added key never shares it with one).
    private readonly List<KeyJob> _draining = [];
    private readonly Dictionary<string, DateTimeOffset> _absentSince;
    private readonly Dictionary<string, string> _conflicts = new(StringComparer.Ordinal);
    private List<ModelSpec> _desired = [];
    private bool _desiredKnown;
    private bool _desiredComplete;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private DateTimeOffset _lastVerify = DateTimeOffset.MinValue;
    private DateTimeOffset? _nextGc;

    public CacheEngine(ModelStore store, ModelFetcher fetcher, DownloadOptions options, TimeProvider time, ILogger<CacheEngine> logger)
    {
        _store = store;
        _fetcher = fetcher;
        _options = options;
        _time = time;
        _logger = logger;
        _slots = new SemaphoreSlim(options.MaxConcurrentModels);
        _absentSince = store.LoadAbsent();
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

    /// <summary>True once a pass ran on a desired state: before that a status write would only guess (M15).</summary>
    public bool Ready { get; private set; }

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

        /// <summary>A folder is in models/ (complete, or to be adopted): the job replaces it in place and the state stays Downloaded.</summary>
        public bool Replacing { get; set; }

        public List<string> Caches { get; set; } = [];
    }

    /// <summary>
    /// Replaces the desired models and wakes the engine. <paramref name="complete"/> false means some of the
    /// desired state could not be read (a config file that never parsed): the models named are fetched, but
    /// nothing is collected.
    /// </summary>
    public void SetDesired(IReadOnlyList<ModelSpec> specs, bool complete = true)
    {
        lock (_lock)
        {
            _desired = [.. specs];
            _desiredKnown = true;
            _desiredComplete = complete;
        }
        Kick();
    }

    public void Kick()
    {
        try
        {
            _kick.Release();
        }
        catch (ObjectDisposedException)
        {
            // A retry timer or an unwinding job after shutdown: there is no loop left to wake.
        }
    }

    /// <summary>The engine loop: a pass on every kick, at least every verify interval, and when a grace period ends.</summary>
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
                var wait = VerifyInterval;
                if (_nextGc is { } due)
                {
                    var untilGc = due - _time.GetUtcNow() + TimeSpan.FromMilliseconds(10);
                    wait = untilGc < wait ? (untilGc > TimeSpan.Zero ? untilGc : TimeSpan.FromMilliseconds(10)) : wait;
                }
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(ct);
                await Task.WhenAny(kick, Task.Delay(wait, _time, tick.Token)).ConfigureAwait(false);
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
                foreach (var j in _jobs.Values.Concat(_draining))
                {
                    j.Cts?.Cancel();
                }
                running = _jobs.Values.Concat(_draining).Select(j => j.Task).OfType<Task>().ToList();
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
            if (!_desiredKnown)
            {
                // Nothing is known yet: an empty desired state here would delete the whole cache (C1).
                return;
            }
            var byKey = Group(out var caches, ref changed);
            _draining.RemoveAll(j => j.Task is not { IsCompleted: false });
            foreach (var (key, job) in _jobs.ToList())
            {
                if (!byKey.ContainsKey(key))
                {
                    job.Removed = true;
                    job.Cts?.Cancel();
                    _jobs.Remove(key);
                    if (job.Task is { IsCompleted: false })
                    {
                        _draining.Add(job);
                    }
                    changed = true;
                }
            }
            foreach (var (key, spec) in byKey)
            {
                changed |= Plan(key, spec, caches[key], now, verify);
            }
            if (_desiredComplete)
            {
                CollectGarbage(byKey, now);
            }
            else
            {
                _nextGc = null;
            }
            if (!Ready)
            {
                Ready = true;
                changed = true;
                LogReady(_logger, byKey.Count, _jobs.Values.Count(j => j.State == ModelStates.Downloaded), _desiredComplete);
            }
        }
        UpdateGauges();
        if (changed)
        {
            SignalChanged();
        }
    }

    /// <summary>
    /// KServe's dedup: entries with the same URI share one folder and one job. An entry with the same URI but a
    /// different filter would change the folder under the first one's pods: it gets a conflict instead.
    /// </summary>
    private Dictionary<string, ModelSpec> Group(out Dictionary<string, List<string>> caches, ref bool changed)
    {
        var byKey = new Dictionary<string, ModelSpec>(StringComparer.Ordinal);
        caches = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var conflicts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var s in _desired)
        {
            if (!byKey.TryGetValue(s.StorageKey, out var first))
            {
                byKey[s.StorageKey] = s;
                caches[s.StorageKey] = [s.StatusKey];
            }
            else if (first.Uri != s.Uri)
            {
                // 64 bits of SHA-256 (KServe's storage key): two URIs meeting here are a collision, never one model.
                conflicts[s.StatusKey] = $"its sourceModelUri has the same storage key {s.StorageKey} as {first.StatusKey}'s, a different URI; "
                    + "the folder stays with the first; use another URI (a trailing '/' or a revision) for this cache";
            }
            else if (first.Filter.ToString() == s.Filter.ToString())
            {
                caches[s.StorageKey].Add(s.StatusKey);
            }
            else
            {
                conflicts[s.StatusKey] = $"{first.StatusKey} caches the same sourceModelUri with a different filter ({first.Filter}, here {s.Filter}); "
                    + $"its folder is kept as it is; give this cache the same filter or another URI";
            }
        }
        if (conflicts.Count != _conflicts.Count || conflicts.Any(kv => _conflicts.GetValueOrDefault(kv.Key) != kv.Value))
        {
            foreach (var (statusKey, message) in conflicts.Where(kv => _conflicts.GetValueOrDefault(kv.Key) != kv.Value))
            {
                LogConflict(_logger, statusKey, message);
            }
            _conflicts.Clear();
            foreach (var kv in conflicts)
            {
                _conflicts[kv.Key] = kv.Value;
            }
            changed = true;
        }
        return byKey;
    }

    /// <summary>Decides what one wanted key needs: nothing, a manifest update, adoption, an update of its files, or a download.</summary>
    private bool Plan(string key, ModelSpec spec, List<string> caches, DateTimeOffset now, bool verify)
    {
        var changed = false;
        var manifest = _store.GetManifest(key);
        if (!_jobs.TryGetValue(key, out var job))
        {
            job = new KeyJob(spec) { UpdatedAt = now, State = manifest is not null || _store.HasUnmanifestedFolder(key) ? ModelStates.Downloaded : ModelStates.Pending };
            _jobs[key] = job;
            changed = true;
        }
        var specChanged = job.Spec.Filter.ToString() != spec.Filter.ToString() || !job.Spec.Settings.SameAs(spec.Settings);
        job.Spec = spec;
        job.Caches = caches;
        if (job.Task is { IsCompleted: false })
        {
            return changed;
        }
        // A job of this key that was removed and is still unwinding owns the staging folder; the new one waits for it (L30).
        var waiting = (job.Failures > 0 && now < job.RetryAt && !specChanged)
            || _draining.Any(d => d.Spec.StorageKey == key && d.Task is { IsCompleted: false });
        if (manifest is not null && verify && _store.CheckIntact(key) is { } problem)
        {
            LogNotIntact(_logger, key, problem);
            _store.Remove(key);
            manifest = null;
            waiting = false;
        }
        if (manifest is { SourceHash.Length: > 0 } held && held.SourceHash != ModelFetcher.UriHash(spec.Uri))
        {
            // The folder belongs to another URI with the same 64-bit key: never serve it as this one, never replace it.
            changed |= Set(job, ModelStates.Error, FailureReason.Conflict,
                $"storage key {key} already holds {held.SourceUri}, a different URI with the same key; use another URI (a trailing '/' or a revision) for this cache", now);
            return changed;
        }
        if (manifest is not null)
        {
            var filterChanged = manifest.Filter is { } f && new FileFilter(f.AllowPatterns, f.IgnorePatterns).ToString() != spec.Filter.ToString();
            if (!filterChanged)
            {
                job.Failures = 0;
                changed |= Set(job, ModelStates.Downloaded, null, null, now);
                if (!manifest.Caches.SequenceEqual(caches) || manifest.Filter is null || manifest.SourceHash.Length == 0)
                {
                    manifest.Caches = caches;
                    manifest.SourceHash = ModelFetcher.UriHash(spec.Uri);
                    manifest.Filter = new ManifestFilter { AllowPatterns = spec.Filter.AllowPatterns, IgnorePatterns = spec.Filter.IgnorePatterns };
                    _store.WriteManifest(manifest);
                }
                return changed;
            }
            if (waiting)
            {
                return changed;
            }
            job.Replacing = true;
        }
        else if (_store.HasUnmanifestedFolder(key))
        {
            if (waiting)
            {
                return changed;
            }
            job.Replacing = true;
        }
        else
        {
            if (waiting)
            {
                return changed;
            }
            job.Replacing = false;
            changed |= Set(job, ModelStates.Pending, job.Reason, job.Message, now);
        }
        job.Cts = new CancellationTokenSource();
        var j = job;
        job.Task = Task.Run(() => RunJobAsync(j, j.Cts.Token));
        return changed;
    }

    /// <summary>
    /// Deletes what a complete desired state has lacked for the grace period, counted from the first pass that
    /// found it absent and kept in <c>.state/absent.json</c> (a restart may lengthen it, never shorten it).
    /// </summary>
    private void CollectGarbage(Dictionary<string, ModelSpec> wanted, DateTimeOffset now)
    {
        var busy = _jobs.Values.Concat(_draining).Where(j => j.Task is { IsCompleted: false }).Select(j => j.Spec.StorageKey).ToHashSet(StringComparer.Ordinal);
        var onDisk = _store.KeysOnDisk();
        var dirty = false;
        long freed = 0;
        DateTimeOffset? next = null;
        foreach (var key in _absentSince.Keys.Where(k => wanted.ContainsKey(k) || !onDisk.Contains(k)).ToList())
        {
            dirty |= _absentSince.Remove(key);
        }
        foreach (var key in onDisk.Where(k => !wanted.ContainsKey(k)))
        {
            if (!_absentSince.TryGetValue(key, out var since))
            {
                _absentSince[key] = since = now;
                dirty = true;
                LogAbsent(_logger, key, _options.GcGrace);
            }
            var due = since + _options.GcGrace;
            if (due > now || busy.Contains(key))
            {
                next = next is { } n && n < due ? n : due;
                continue;
            }
            freed += _store.Remove(key);
            _absentSince.Remove(key);
            dirty = true;
        }
        if (dirty)
        {
            _store.SaveAbsent(_absentSince);
        }
        var (replaced, nextReplaced) = _store.CollectReplaced(now, _options.GcGrace);
        freed += replaced;
        _nextGc = (next, nextReplaced) switch
        {
            ({ } a, { } b) => a < b ? a : b,
            var (a, b) => a ?? b,
        };
        if (freed > 0)
        {
            AgentMetrics.GcBytes.Inc(freed);
            LogCollected(_logger, freed, _options.GcGrace);
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
            if (job.Removed)
            {
                Kick();
            }
            return;
        }
        var started = Stopwatch.GetTimestamp();
        StagingArea? staging = null;
        try
        {
            var spec = job.Spec;
            var folder = _store.ModelPath(key);
            var current = job.Replacing ? _store.GetManifest(key) : null;
            var request = new FetchRequest(spec.Uri, key, spec.Filter, spec.Settings, null,
                job.Replacing ? new ReuseFrom(folder, current?.Files.ToDictionary(f => f.Path, StringComparer.Ordinal)) : null);
            if (!job.Replacing)
            {
                SetAndSignal(job, ModelStates.Downloading, null, null);
            }
            LogStarting(_logger, key, ModelFetcher.SafeUri(spec.Uri));
            var listed = await _fetcher.ListAsync(request, ct).ConfigureAwait(false);
            if (job.Replacing && current is null && _fetcher.Match(folder, listed) is var (matched, mismatch))
            {
                if (matched is not null)
                {
                    lock (_lock)
                    {
                        if (job.Removed)
                        {
                            return;
                        }
                        _store.WriteManifest(NewManifest(job, matched, "adopted", 0));
                        job.Failures = 0;
                    }
                    LogAdopted(_logger, key, matched.Count, matched.Sum(f => f.Size));
                    SetAndSignal(job, ModelStates.Downloaded, null, null);
                    // The state may not have changed (it stayed Downloaded), but the disk did.
                    SignalChanged();
                    return;
                }
                LogReplacing(_logger, key, mismatch!);
            }
            long? maxBytes = StorageLimitBytes is { } limit ? limit - UsedByOthers(key) : null;
            staging = _store.OpenStaging(key);
            var files = await _fetcher.FetchAsync(request with { MaxBytes = maxBytes }, staging, _store.Io, _store.AvailableFreeSpace, job.Progress, ct, listed).ConfigureAwait(false);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            lock (_lock)
            {
                if (job.Removed)
                {
                    staging.Delete();
                    return;
                }
                _store.Commit(staging, NewManifest(job, files, "downloaded", seconds), _time.GetUtcNow());
                job.Failures = 0;
            }
            AgentMetrics.DownloadDuration.Observe(seconds);
            LogDownloaded(_logger, key, files.Sum(f => f.Size), seconds);
            SetAndSignal(job, ModelStates.Downloaded, null, null);
            SignalChanged();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Removed from the spec or shutting down: the staging stays for a resume (or for GC after the grace period).
        }
        catch (Exception e)
        {
            var (reason, message) = e is DownloadException d ? (d.Reason, d.Message)
                : e is IOException io && DiskErrors.IsDiskFull(io) ? (FailureReason.DiskFull, "disk full: no space left on device")
                : (FailureReason.IoError, e.Message);
            var storage = reason is FailureReason.DiskFull or FailureReason.InsufficientStorage or FailureReason.StorageLimitExceeded;
            if (storage)
            {
                // Give the space back to the models that fit.
                staging?.Delete();
            }
            AgentMetrics.DownloadFailures.WithLabels(reason.ToString()).Inc();
            LogFailed(_logger, key, reason.ToString(), message);
            TimeSpan delay;
            lock (_lock)
            {
                job.Failures++;
                delay = TimeSpan.FromTicks(Math.Min(MaxErrorRetryDelay.Ticks, ErrorRetryDelay.Ticks * (1L << Math.Min(20, job.Failures - 1))));
                job.RetryAt = _time.GetUtcNow() + delay;
            }
            // A folder in use stays served while its replacement cannot be fetched; only a lack of room is an error.
            SetAndSignal(job, job.Replacing && !storage ? ModelStates.Downloaded : ModelStates.Error, reason, message);
            // Wake the loop at retry time.
            _ = Task.Delay(delay, _time, CancellationToken.None).ContinueWith(_ => Kick(), TaskScheduler.Default);
        }
        finally
        {
            _slots.Release();
            if (job.Removed)
            {
                // A key re-added meanwhile waits for this job to end.
                Kick();
            }
        }
    }

    private ModelManifest NewManifest(KeyJob job, List<ManifestFile> files, string origin, double seconds)
    {
        var spec = job.Spec;
        return new ModelManifest
        {
            StorageKey = spec.StorageKey,
            Caches = job.Caches,
            SourceUri = ModelFetcher.SafeUri(spec.Uri),
            SourceHash = ModelFetcher.UriHash(spec.Uri),
            Filter = new ManifestFilter { AllowPatterns = spec.Filter.AllowPatterns, IgnorePatterns = spec.Filter.IgnorePatterns },
            Verification = Verification.Overall(files),
            Origin = origin,
            TotalBytes = files.Sum(f => f.Size),
            CompletedAt = _time.GetUtcNow(),
            DurationSeconds = seconds,
            Files = files,
        };
    }

    /// <summary>What the other models hold or are about to hold (running downloads count with their planned size).</summary>
    private long UsedByOthers(string key)
    {
        var committed = _store.Manifests().Where(m => m.StorageKey != key).ToList();
        long running;
        lock (_lock)
        {
            running = _jobs.Values.Where(j => j.Spec.StorageKey != key && j.Task is { IsCompleted: false } && !j.Replacing
                && committed.All(m => m.StorageKey != j.Spec.StorageKey)).Sum(j => j.Progress.Total ?? 0);
        }
        return committed.Sum(m => m.TotalBytes) + running;
    }

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

    /// <summary>Status keys with a conflict, and why (for a condition beside the per-model status).</summary>
    public IReadOnlyDictionary<string, string> Conflicts
    {
        get
        {
            lock (_lock)
            {
                return new Dictionary<string, string>(_conflicts, StringComparer.Ordinal);
            }
        }
    }

    /// <summary>A complete model whose bytes could be checked by size only says so (the source offered no checksum).</summary>
    private static string? UnverifiedMessage(ModelManifest m)
    {
        var unverified = m.Files.Count(f => f.Verified != Verification.Checksum);
        return unverified == 0 ? null
            : $"{unverified} of {m.Files.Count} files verified by size only: the source offers no checksum for them";
    }

    /// <summary>One view per desired status key (several keys may share one storage key).</summary>
    public IReadOnlyList<ModelStatusView> Snapshot()
    {
        lock (_lock)
        {
            var list = new List<ModelStatusView>();
            foreach (var s in _desired)
            {
                var safe = ModelFetcher.SafeUri(s.Uri);
                var path = _store.ModelPath(s.StorageKey);
                if (_conflicts.TryGetValue(s.StatusKey, out var conflict))
                {
                    list.Add(new ModelStatusView(s.StatusKey, safe, s.StorageKey, ModelStates.Error, 0, null, nameof(FailureReason.Conflict), conflict, _time.GetUtcNow(), path));
                    continue;
                }
                var manifest = _store.GetManifest(s.StorageKey);
                if (!_jobs.TryGetValue(s.StorageKey, out var j))
                {
                    // Before the first pass: what the disk holds, so that a restart never reports Pending for a complete model.
                    var state = manifest is not null || _store.HasUnmanifestedFolder(s.StorageKey) ? ModelStates.Downloaded : ModelStates.Pending;
                    list.Add(new ModelStatusView(s.StatusKey, safe, s.StorageKey, state, manifest?.TotalBytes ?? 0, manifest?.TotalBytes, null, null, _time.GetUtcNow(), path));
                    continue;
                }
                long done = j.Progress.Done;
                long? total = j.Progress.Total;
                var message = j.Message;
                if (j.State == ModelStates.Downloaded && manifest is not null)
                {
                    done = manifest.TotalBytes;
                    total = manifest.TotalBytes;
                    message ??= UnverifiedMessage(manifest);
                }
                list.Add(new ModelStatusView(s.StatusKey, safe, s.StorageKey, j.State, done, total,
                    j.Reason?.ToString(), message, j.UpdatedAt, path));
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
        // Serialised, so that the last writer always publishes a snapshot taken after the last state change
        // (two jobs finishing together could otherwise leave a stale count behind).
        lock (_gaugeLock)
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
                AgentMetrics.UnverifiedFiles.Set(_store.Manifests().Sum(m => m.Files.Count(f => f.Verified != Verification.Checksum)));
            }
            catch (IOException)
            {
            }
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

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Collected {Bytes} bytes of models absent from the desired state for the grace period ({Grace})")]
    private static partial void LogCollected(ILogger logger, long bytes, TimeSpan grace);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Error, Message = "Cache pass failed: {Message}")]
    private static partial void LogPassFailed(ILogger logger, string message);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Information, Message = "Model {StorageKey} is no longer desired; it is kept for the grace period ({Grace})")]
    private static partial void LogAbsent(ILogger logger, string storageKey, TimeSpan grace);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Information, Message = "Adopted {StorageKey}: the folder matches the source ({Files} files, {Bytes} bytes); nothing fetched")]
    private static partial void LogAdopted(ILogger logger, string storageKey, int files, long bytes);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Warning, Message = "Folder of {StorageKey} does not match the source ({Mismatch}); staging a replacement")]
    private static partial void LogReplacing(ILogger logger, string storageKey, string mismatch);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Information, Message = "Cache ready: {Models} models desired, {Complete} already on disk (desired state complete: {DesiredComplete})")]
    private static partial void LogReady(ILogger logger, int models, int complete, bool desiredComplete);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Warning, Message = "Conflict for {StatusKey}: {Message}")]
    private static partial void LogConflict(ILogger logger, string statusKey, string message);
}
