using KServe.Node.Api;

namespace KServe.Node.IsvcController.Placement;

/// <summary>
/// A LocalModelCache or LocalModelNamespaceCache as the matcher and the readiness logic see it: its identity,
/// its source and groups, and its per-node status and progress.
/// </summary>
internal sealed record CacheView
{
    public required string Name { get; init; }

    /// <summary>The namespace of a LocalModelNamespaceCache; null for a cluster-scoped LocalModelCache.</summary>
    public string? Namespace { get; init; }

    public required string SourceModelUri { get; init; }
    public IReadOnlyList<string> NodeGroups { get; init; } = [];

    /// <summary><c>status.nodeStatus</c>: node name → NodeStatus enum string.</summary>
    public IReadOnlyDictionary<string, string> NodeStatus { get; init; } = new Dictionary<string, string>();

    /// <summary>Status key of this cache's entries on LocalModelNodes (<c>name</c> or <c>ns/name</c>).</summary>
    public string StatusKey => Api.StatusKey.For(Name, Namespace);

    /// <summary>True when the cache is being deleted (it is no longer offered to new InferenceServices).</summary>
    public bool Deleting { get; init; }
}

/// <summary>What the agent on one node says about one cache entry: its group and download progress.</summary>
internal sealed record NodeEntryView
{
    public required string Node { get; init; }

    /// <summary>The group through which the node got the model (<c>spec.localModels[].nodeGroup</c>).</summary>
    public string? NodeGroup { get; init; }

    public long? BytesDone { get; init; }
    public long? BytesTotal { get; init; }
    public string? Message { get; init; }
}

/// <summary>The cache an InferenceService uses and what follows from it (labels, PVC, mount, placement label).</summary>
internal sealed record CacheMatch
{
    public required CacheView Cache { get; init; }

    /// <summary>The node group serving this InferenceService: the annotation's, or the cache's first.</summary>
    public required string NodeGroup { get; init; }

    /// <summary>KServe's serving PVC in the InferenceService namespace: <c>{cache}-{group}</c>.</summary>
    public string PvcName => KServeNames.ServingPvc(Cache.Name, NodeGroup);

    /// <summary>KServe's storage key of the cache's source URI (first 16 hex chars of its SHA-256).</summary>
    public string StorageKey => Api.StorageKey.Compute(Cache.SourceModelUri);

    /// <summary>The part of the storageUri below the cache's source, e.g. <c>/model1</c>; empty for an exact match.</summary>
    public required string SubPath { get; init; }

    /// <summary>subPath of the serving PVC mounted at <c>/mnt/models</c>: <c>models/{key}{sub}</c>.</summary>
    public string VolumeSubPath => KServeNames.ModelSubPath(StorageKey) + SubPath;
}

/// <summary>
/// KServe's cache matching (spec §4.1): namespace caches first, then cluster caches, each in list order; the
/// first whose <c>sourceModelUri</c> prefix-matches the storageUri and (when the ISVC names one through
/// <c>serving.kserve.io/nodegroup</c>) lists that group wins.
/// </summary>
internal static class CacheMatcher
{
    public static CacheMatch? Match(
        string? storageUri,
        string? nodeGroupAnnotation,
        IEnumerable<CacheView> namespaceCaches,
        IEnumerable<CacheView> clusterCaches)
    {
        ArgumentNullException.ThrowIfNull(namespaceCaches);
        ArgumentNullException.ThrowIfNull(clusterCaches);
        if (string.IsNullOrEmpty(storageUri))
        {
            return null;
        }

        foreach (var cache in namespaceCaches.Concat(clusterCaches))
        {
            if (cache.Deleting || cache.NodeGroups.Count == 0 || !StorageUri.Matches(cache.SourceModelUri, storageUri))
            {
                continue;
            }

            var group = string.IsNullOrEmpty(nodeGroupAnnotation) ? cache.NodeGroups[0] : nodeGroupAnnotation;
            if (!cache.NodeGroups.Contains(group, StringComparer.Ordinal))
            {
                continue;
            }

            return new CacheMatch { Cache = cache, NodeGroup = group, SubPath = SubPath(cache.SourceModelUri, storageUri) };
        }

        return null;
    }

    /// <summary>The storageUri below the cached URI, e.g. <c>/model1</c>, or empty for the same folder.</summary>
    public static string SubPath(string cachedUri, string storageUri)
    {
        var c = TrimOneSlash(cachedUri);
        var s = TrimOneSlash(storageUri);
        return s.Length > c.Length ? s[c.Length..] : "";
    }

    private static string TrimOneSlash(string s) => s.EndsWith('/') ? s[..^1] : s;
}
