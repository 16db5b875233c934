using System.Globalization;
using k8s.Models;
using KServe.Node.Api;
using KServe.Node.Api.V1Alpha1;

namespace KServe.Node.CacheController.Model;

/// <summary>Condition types and reasons on caches (the status additions of the contracts).</summary>
internal static class CacheConditions
{
    public const string Ready = LocalModelCacheConditions.Ready;
    public const string Degraded = LocalModelCacheConditions.Degraded;
    public const string StorageLimitExceeded = LocalModelCacheConditions.StorageLimitExceeded;

    public const string ReasonAllCopiesAvailable = "AllCopiesAvailable";
    public const string ReasonDownloading = "Downloading";
    public const string ReasonNoMemberNodes = "NoMemberNodes";
    public const string ReasonDownloadFailed = "DownloadFailed";
    public const string ReasonNodeGroupNotFound = "NodeGroupNotFound";
    public const string ReasonAsExpected = "AsExpected";
    public const string ReasonModelDoesNotFit = "ModelDoesNotFit";
    public const string ReasonWithinLimits = "WithinLimits";
}

/// <summary>One node of the cache's groups as the status sees it.</summary>
/// <param name="Name">Node name.</param>
/// <param name="Ready">The node's Ready condition is True.</param>
/// <param name="ModelStatus">The node agent's <c>status.modelStatus[statusKey]</c>, if any.</param>
/// <param name="Rejected">The model does not fit the node's storage limit, so it is not placed there.</param>
internal sealed record MemberNode(string Name, bool Ready, string? ModelStatus, StorageRejection? Rejected = null);

/// <summary>The computed status of a cache (KServe's fields plus conditions).</summary>
internal sealed record CacheStatusResult(
    SortedDictionary<string, string> NodeStatus,
    int Available,
    int Total,
    int Failed,
    IReadOnlyList<V1Condition> Conditions);

/// <summary>
/// Folds the per-node picture of one cache into its status. Unlike KServe, the map is rebuilt from the current
/// member nodes every time, so deleted nodes and nodes that left a group disappear from <c>nodeStatus</c> and
/// <c>copies</c> (KServe §2.8/§2.9 item 2).
/// </summary>
internal static class CacheStatusCalculator
{
    private const int MaxNamesInMessage = 5;

    public static CacheStatusResult Compute(IEnumerable<MemberNode> members, IReadOnlyCollection<string> missingGroups,
        IReadOnlyList<V1Condition>? existing, long generation, DateTime now)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(missingGroups);
        var nodeStatus = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var rejected = new List<MemberNode>();
        foreach (var m in members)
        {
            if (m.Rejected is not null)
            {
                rejected.Add(m);
                continue;
            }

            nodeStatus[m.Name] = m.Ready ? ModelStatus.ToNodeStatus(m.ModelStatus) : NodeStatus.NodeNotReady;
        }

        var available = nodeStatus.Values.Count(v => v == NodeStatus.NodeDownloaded);
        var failed = nodeStatus.Where(kv => kv.Value == NodeStatus.NodeDownloadError).Select(kv => kv.Key).ToList();
        var total = nodeStatus.Count;

        var desired = new List<V1Condition>(3);
        if (rejected.Count > 0)
        {
            desired.Add(Condition(CacheConditions.Ready, false, CacheConditions.ReasonModelDoesNotFit,
                $"{available}/{total} copies available; the model does not fit the storage limit of {Names(rejected.Select(r => r.Name))}"));
        }
        else if (total == 0)
        {
            desired.Add(Condition(CacheConditions.Ready, false, CacheConditions.ReasonNoMemberNodes,
                missingGroups.Count > 0 ? $"node group(s) not found: {string.Join(", ", missingGroups)}" : "no node matches the cache's node groups"));
        }
        else if (available == total)
        {
            desired.Add(Condition(CacheConditions.Ready, true, CacheConditions.ReasonAllCopiesAvailable,
                $"{available}/{total} copies available"));
        }
        else
        {
            desired.Add(Condition(CacheConditions.Ready, false, CacheConditions.ReasonDownloading,
                $"{available}/{total} copies available"));
        }

        if (failed.Count > 0)
        {
            desired.Add(Condition(CacheConditions.Degraded, true, CacheConditions.ReasonDownloadFailed,
                $"download failed on {Names(failed)}"));
        }
        else if (missingGroups.Count > 0)
        {
            desired.Add(Condition(CacheConditions.Degraded, true, CacheConditions.ReasonNodeGroupNotFound,
                $"LocalModelNodeGroup not found: {string.Join(", ", missingGroups)}"));
        }
        else
        {
            desired.Add(Condition(CacheConditions.Degraded, false, CacheConditions.ReasonAsExpected, "no failures"));
        }

        if (rejected.Count > 0)
        {
            var first = rejected[0].Rejected!;
            desired.Add(Condition(CacheConditions.StorageLimitExceeded, true, CacheConditions.ReasonModelDoesNotFit,
                $"modelSize {Quantity(first.ModelSize)} does not fit on {rejected.Count} node(s): {Names(rejected.Select(r => $"{r.Name} ({r.Rejected!.Describe()})"))}"));
        }
        else
        {
            desired.Add(Condition(CacheConditions.StorageLimitExceeded, false, CacheConditions.ReasonWithinLimits,
                "the model fits the storage limit of every member node"));
        }

        return new CacheStatusResult(nodeStatus, available, total, failed.Count,
            ConditionSet.Merge(existing, desired, generation, now));
    }

    private static V1Condition Condition(string type, bool status, string reason, string message) => new()
    {
        Type = type,
        Status = status ? ConditionStatus.True : ConditionStatus.False,
        Reason = reason,
        Message = message,
    };

    internal static string Names(IEnumerable<string> names)
    {
        var list = names.ToList();
        return list.Count <= MaxNamesInMessage
            ? string.Join(", ", list)
            : $"{string.Join(", ", list.Take(MaxNamesInMessage))} and {list.Count - MaxNamesInMessage} more";
    }

    /// <summary>Bytes in the largest binary unit that divides them exactly (<c>123Gi</c>), as users write sizes.</summary>
    internal static string Quantity(long bytes)
    {
        string[] units = ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"];
        for (var i = 0; i < units.Length; i++)
        {
            var unit = 1L << (10 * (units.Length - i));
            if (bytes != 0 && bytes % unit == 0)
            {
                return (bytes / unit).ToString(CultureInfo.InvariantCulture) + units[i];
            }
        }

        return bytes.ToString(CultureInfo.InvariantCulture);
    }
}

/// <summary>Condition list maintenance: the transition time moves only when a condition's status flips.</summary>
internal static class ConditionSet
{
    public static IReadOnlyList<V1Condition> Merge(IReadOnlyList<V1Condition>? existing, IEnumerable<V1Condition> desired,
        long generation, DateTime now)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var result = new List<V1Condition>();
        foreach (var d in desired)
        {
            var old = existing?.FirstOrDefault(c => string.Equals(c.Type, d.Type, StringComparison.Ordinal));
            result.Add(new V1Condition
            {
                Type = d.Type,
                Status = d.Status,
                Reason = d.Reason,
                Message = d.Message,
                ObservedGeneration = generation,
                LastTransitionTime = old is not null && string.Equals(old.Status, d.Status, StringComparison.Ordinal)
                    ? old.LastTransitionTime
                    : now,
            });
        }

        // Conditions of other types (written by someone else) are kept as they are.
        if (existing is not null)
        {
            foreach (var c in existing)
            {
                if (!result.Any(r => string.Equals(r.Type, c.Type, StringComparison.Ordinal)))
                {
                    result.Add(c);
                }
            }
        }

        return result;
    }

    /// <summary>The conditions whose status differs from before (or that are new), for Events.</summary>
    public static IEnumerable<V1Condition> Flipped(IReadOnlyList<V1Condition>? before, IReadOnlyList<V1Condition> after)
    {
        ArgumentNullException.ThrowIfNull(after);
        foreach (var c in after)
        {
            var old = before?.FirstOrDefault(b => string.Equals(b.Type, c.Type, StringComparison.Ordinal));
            if (old is null || !string.Equals(old.Status, c.Status, StringComparison.Ordinal)
                || !string.Equals(old.Reason, c.Reason, StringComparison.Ordinal))
            {
                yield return c;
            }
        }
    }
}
