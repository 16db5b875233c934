using KServe.Node.Api.V1Alpha1;

namespace KServe.Node.IsvcController.Placement;

/// <summary>Maps the cache CRD objects onto the views the matcher and readiness logic use.</summary>
internal static class CacheViews
{
    public static CacheView From(LocalModelCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        return new CacheView
        {
            Name = cache.Metadata.Name,
            SourceModelUri = cache.Spec.SourceModelUri,
            NodeGroups = [.. cache.Spec.NodeGroups],
            NodeStatus = new Dictionary<string, string>(cache.Status?.NodeStatus ?? new Dictionary<string, string>()),
            Deleting = cache.Metadata.DeletionTimestamp is not null,
        };
    }

    public static CacheView From(LocalModelNamespaceCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        return new CacheView
        {
            Name = cache.Metadata.Name,
            Namespace = cache.Metadata.NamespaceProperty,
            SourceModelUri = cache.Spec.SourceModelUri,
            NodeGroups = [.. cache.Spec.NodeGroups],
            NodeStatus = new Dictionary<string, string>(cache.Status?.NodeStatus ?? new Dictionary<string, string>()),
            Deleting = cache.Metadata.DeletionTimestamp is not null,
        };
    }

    /// <summary>
    /// This cache's entries on the nodes its status lists: the group each node got it through and the agent's
    /// download progress (<c>status.modelProgress[statusKey]</c>).
    /// </summary>
    public static Dictionary<string, NodeEntryView> Entries(CacheView cache, Func<string, LocalModelNode?> getNode)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(getNode);
        var entries = new Dictionary<string, NodeEntryView>(StringComparer.Ordinal);
        foreach (var nodeName in cache.NodeStatus.Keys)
        {
            var node = getNode(nodeName);
            if (node is null)
            {
                continue;
            }

            var info = node.Spec.LocalModels.FirstOrDefault(m => m.ModelName == cache.Name
                && string.Equals(string.IsNullOrEmpty(m.Namespace) ? null : m.Namespace, cache.Namespace, StringComparison.Ordinal));
            ModelProgress? progress = null;
            node.Status?.ModelProgress?.TryGetValue(cache.StatusKey, out progress);
            entries[nodeName] = new NodeEntryView
            {
                Node = nodeName,
                NodeGroup = string.IsNullOrEmpty(info?.NodeGroup) ? null : info.NodeGroup,
                BytesDone = progress?.BytesDone,
                BytesTotal = progress?.BytesTotal,
                Message = progress?.Message,
            };
        }

        return entries;
    }
}
