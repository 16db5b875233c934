using k8s;
using k8s.Models;
using KServe.Node.Agent.Engine;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Runtime;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Agent.Kubernetes;

/// <summary>
/// Writes <c>LocalModelNode.status</c> from the engine: KServe's <c>modelStatus</c> (exactly one key per spec
/// entry, its enum strings) plus our <c>modelProgress</c>, <c>storage</c> and a <c>Ready</c> condition. Writes
/// only when something changed, at most once per <see cref="MinInterval"/>; progress alone is refreshed at
/// most every <see cref="ProgressInterval"/>. Conflicts re-read and retry.
/// </summary>
internal sealed partial class NodeStatusWriter(SharedInformerFactory informers, AgentNodeSettings node, CacheEngine engine,
    TimeProvider time, ILogger<NodeStatusWriter> logger) : BackgroundService
{
    private readonly SemaphoreSlim _kick = new(0);

    public TimeSpan MinInterval { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(5);

    public long Writes { get; private set; }

    public void Kick() => _kick.Release();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Task? kick = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            kick ??= _kick.WaitAsync(stoppingToken);
            using var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            await Task.WhenAny(kick, engine.NextChange, Task.Delay(ProgressInterval, time, tick.Token)).ConfigureAwait(false);
            await tick.CancelAsync().ConfigureAwait(false);
            if (kick.IsCompleted)
            {
                kick = null;
            }
            try
            {
                await WriteAsync(stoppingToken).ConfigureAwait(false);
                await Task.Delay(MinInterval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogWriteFailed(logger, e.Message);
            }
        }
    }

    internal async Task WriteAsync(CancellationToken ct)
    {
        if (!engine.Ready)
        {
            // Before the engine's first pass on the LocalModelNode every model would read Pending (M15).
            return;
        }
        // The informer's copy, not a GET: a write happens only when the status differs from it, so a steady node makes no
        // requests. A copy that trails our own last write costs one conflict, which re-reads and retries.
        var current = informers.Get<LocalModelNode>(node.LocalModelNodeInformer).Get(new ObjectKey(null, node.NodeName));
        if (current is null)
        {
            return;
        }
        var client = informers.ClientFor<LocalModelNode>();
        var written = await Updates.UpdateAsync(client, current, lmn => Apply(lmn, engine.Snapshot(), engine, time.GetUtcNow()), status: true, ct).ConfigureAwait(false);
        if (!ReferenceEquals(written, current))
        {
            Writes++;
        }
    }

    /// <summary>Sets the status from the snapshot; true when it differs from what was there.</summary>
    internal static bool Apply(LocalModelNode lmn, IReadOnlyList<ModelStatusView> snapshot, CacheEngine engine, DateTimeOffset now)
    {
        var old = lmn.Status ?? new LocalModelNodeStatus();
        var byKey = snapshot.GroupBy(v => v.StatusKey, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var modelStatus = new Dictionary<string, string>(StringComparer.Ordinal);
        var progress = new Dictionary<string, ModelProgress>(StringComparer.Ordinal);
        foreach (var entry in lmn.Spec.LocalModels)
        {
            var key = entry.StatusKey;
            if (modelStatus.ContainsKey(key))
            {
                continue;
            }
            var v = byKey.Lookup(key);
            modelStatus[key] = v?.State ?? ModelStates.Pending;
            var message = v?.Message is { } m ? $"{v.Reason}: {m}" : null;
            var p = new ModelProgress { BytesDone = v?.BytesDone ?? 0, BytesTotal = v?.BytesTotal, Message = message };
            var before = old.ModelProgress?.Lookup(key);
            p.UpdatedAt = before is not null && before.BytesDone == p.BytesDone && before.BytesTotal == p.BytesTotal && before.Message == p.Message
                ? before.UpdatedAt
                : now.UtcDateTime;
            progress[key] = p;
        }
        long used = 0, capacity = 0;
        try
        {
            used = engine.Store.UsedBytes();
            capacity = engine.StorageLimitBytes ?? new DriveInfo(engine.Store.Root).TotalSize;
        }
        catch (IOException)
        {
        }
        var ready = modelStatus.Values.All(s => s == ModelStates.Downloaded);
        var failed = modelStatus.Values.Any(s => s == ModelStates.Error);
        var (status, reason, text) = ready ? ("True", "AllModelsDownloaded", $"{modelStatus.Count} models downloaded")
            : failed ? ("False", "DownloadFailed", $"{modelStatus.Values.Count(s => s == ModelStates.Error)} of {modelStatus.Count} models failed")
            : ("False", "Downloading", $"{modelStatus.Values.Count(s => s == ModelStates.Downloaded)} of {modelStatus.Count} models downloaded");
        var oldReady = old.Conditions?.FirstOrDefault(c => c.Type == "Ready");
        var condition = new V1Condition
        {
            Type = "Ready",
            Status = status,
            Reason = reason,
            Message = text,
            ObservedGeneration = lmn.Metadata.Generation,
            LastTransitionTime = oldReady is not null && oldReady.Status == status ? oldReady.LastTransitionTime : now.UtcDateTime,
        };

        var conflicts = engine.Conflicts;
        var oldConflict = old.Conditions?.FirstOrDefault(c => c.Type == "Conflict");
        var conflict = conflicts.Count == 0 ? null : new V1Condition
        {
            Type = "Conflict",
            Status = "True",
            Reason = "SameUriDifferentFilter",
            Message = string.Join("; ", conflicts.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}: {kv.Value}")),
            ObservedGeneration = lmn.Metadata.Generation,
            LastTransitionTime = oldConflict?.LastTransitionTime ?? now.UtcDateTime,
        };
        var changed = oldConflict?.Message != conflict?.Message
            || !SameMap(old.ModelStatus, modelStatus)
            || !SameProgress(old.ModelProgress, progress)
            || old.Storage?.Used?.ToInt64() != used || old.Storage?.Capacity?.ToInt64() != capacity
            || oldReady is null || oldReady.Status != condition.Status || oldReady.Reason != condition.Reason || oldReady.Message != condition.Message
            || oldReady.ObservedGeneration != condition.ObservedGeneration;
        if (!changed)
        {
            return false;
        }
        lmn.Status ??= new LocalModelNodeStatus();
        lmn.Status.ModelStatus = modelStatus;
        lmn.Status.ModelProgress = progress;
        lmn.Status.Storage = new LocalModelNodeStorageStatus { Used = new ResourceQuantity(used.ToString(System.Globalization.CultureInfo.InvariantCulture)), Capacity = new ResourceQuantity(capacity.ToString(System.Globalization.CultureInfo.InvariantCulture)) };
        lmn.Status.Conditions = [.. (old.Conditions ?? []).Where(c => c.Type is not "Ready" and not "Conflict"), condition, .. conflict is null ? [] : new[] { conflict }];
        return true;
    }

    private static bool SameMap(IDictionary<string, string>? a, Dictionary<string, string> b) =>
        (a?.Count ?? 0) == b.Count && b.All(kv => a!.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private static bool SameProgress(IDictionary<string, ModelProgress>? a, Dictionary<string, ModelProgress> b) =>
        (a?.Count ?? 0) == b.Count && b.All(kv => a!.TryGetValue(kv.Key, out var v) && v.BytesDone == kv.Value.BytesDone
            && v.BytesTotal == kv.Value.BytesTotal && v.Message == kv.Value.Message);

    public override void Dispose()
    {
        _kick.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 4201, Level = LogLevel.Warning, Message = "Writing LocalModelNode status failed: {Error}")]
    private static partial void LogWriteFailed(ILogger logger, string error);
}
