using System.Globalization;
using System.Text;

namespace KServe.Node.IsvcController.Placement;

/// <summary>How far the cache serving an InferenceService is: the ModelCached condition and the placement gate.</summary>
/// <param name="Available">Nodes of the serving group that hold the model.</param>
/// <param name="Total">Nodes of the serving group the cache lists.</param>
/// <param name="Failed">Nodes where the download failed.</param>
/// <param name="Reason">CamelCase reason of the ModelCached condition.</param>
/// <param name="Message">Which nodes hold the model and how far the others are.</param>
internal sealed record CacheState(int Available, int Total, int Failed, string Reason, string Message)
{
    public const string Cached = "ModelCached";
    public const string Downloading = "ModelDownloading";
    public const string DownloadFailed = "ModelDownloadFailed";
    public const string NoNodes = "NoCacheNodes";

    /// <summary>At least one node holds the model, so pods may be created.</summary>
    public bool AnyNodeHoldsModel => Available > 0;
}

/// <summary>Computes <see cref="CacheState"/> from a cache's status and its nodes' progress reports.</summary>
internal static class CacheReadiness
{
    public const string NodeDownloaded = "NodeDownloaded";
    public const string NodeDownloadError = "NodeDownloadError";
    public const string NodeDownloading = "NodeDownloading";
    public const string NodeDownloadPending = "NodeDownloadPending";
    public const string NodeNotReady = "NodeNotReady";

    /// <param name="match">The cache and group the InferenceService uses.</param>
    /// <param name="entries">Per-node entries of this cache from LocalModelNodes (group and progress), by node name.</param>
    public static CacheState Compute(CacheMatch match, IReadOnlyDictionary<string, NodeEntryView> entries)
    {
        ArgumentNullException.ThrowIfNull(match);
        ArgumentNullException.ThrowIfNull(entries);

        // The cache's nodeStatus covers all its groups; a node counts only when it is in the serving group (the
        // serving PV's affinity would keep the pod off the others). A node without an entry has no group on
        // record (NotReady nodes): it stays in, as KServe counts it too.
        var nodes = match.Cache.NodeStatus
            .Where(kv => !entries.TryGetValue(kv.Key, out var e) || e.NodeGroup is null
                || string.Equals(e.NodeGroup, match.NodeGroup, StringComparison.Ordinal))
            .OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .ToList();

        var available = nodes.Count(kv => kv.Value == NodeDownloaded);
        var failed = nodes.Count(kv => kv.Value == NodeDownloadError);
        var cacheName = match.Cache.Namespace is null ? $"LocalModelCache {match.Cache.Name}" : $"LocalModelNamespaceCache {match.Cache.StatusKey}";

        if (nodes.Count == 0)
        {
            return new CacheState(0, 0, 0, CacheState.NoNodes,
                $"{cacheName} lists no node of group {match.NodeGroup} yet: no pod is created until a node holds the model");
        }

        var others = string.Join(", ", nodes.Where(kv => kv.Value != NodeDownloaded).Select(kv => Describe(kv.Key, kv.Value, entries)));
        if (available > 0)
        {
            var holders = string.Join(", ", nodes.Where(kv => kv.Value == NodeDownloaded).Select(kv => kv.Key));
            var msg = $"model cached on {available} of {nodes.Count} nodes of group {match.NodeGroup} ({holders})";
            return new CacheState(available, nodes.Count, failed, CacheState.Cached, others.Length == 0 ? msg : $"{msg}; {others}");
        }

        if (failed == nodes.Count)
        {
            return new CacheState(0, nodes.Count, failed, CacheState.DownloadFailed,
                $"{cacheName}: the download failed on all {failed} nodes of group {match.NodeGroup}, no pod is created: {others}");
        }

        return new CacheState(0, nodes.Count, failed, CacheState.Downloading,
            $"{cacheName}: 0 of {nodes.Count} nodes of group {match.NodeGroup} hold the model yet, no pod is created until one does: {others}");
    }

    private static string Describe(string node, string status, IReadOnlyDictionary<string, NodeEntryView> entries)
    {
        entries.TryGetValue(node, out var e);
        var sb = new StringBuilder(node).Append(' ');
        switch (status)
        {
            case NodeDownloadError:
                sb.Append("failed");
                if (!string.IsNullOrEmpty(e?.Message))
                {
                    sb.Append(": ").Append(e.Message);
                }

                break;
            case NodeDownloading when e is { BytesDone: { } done, BytesTotal: { } total } && total > 0:
                var pct = (int)Math.Min(100, done * 100 / total);
                sb.Append(CultureInfo.InvariantCulture, $"downloading {pct}% ({Bytes(done)} of {Bytes(total)})");
                break;
            case NodeDownloading:
                sb.Append("downloading");
                break;
            case NodeNotReady:
                sb.Append("not ready");
                break;
            default:
                sb.Append("pending");
                break;
        }

        return sb.ToString();
    }

    internal static string Bytes(long n)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = n;
        var u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }

        return u == 0 ? $"{n} B" : string.Create(CultureInfo.InvariantCulture, $"{v:0.#} {units[u]}");
    }
}
