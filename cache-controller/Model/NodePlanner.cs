using k8s.Models;
using KServe.Node.Api;

namespace KServe.Node.CacheController.Model;

/// <summary>What the planner needs to know about a cache.</summary>
/// <param name="Ref">The cache.</param>
/// <param name="StorageKey">The storage key of its source URI (two caches with one URI share a folder).</param>
/// <param name="ModelSizeBytes">Its <c>spec.modelSize</c> in bytes.</param>
/// <param name="NodeGroups">Its <c>spec.nodeGroups</c>, in order.</param>
/// <param name="CreationTimestamp">When it was created: older caches are placed first when space is short.</param>
internal sealed record CacheModel(CacheRef Ref, string StorageKey, long ModelSizeBytes, IReadOnlyList<string> NodeGroups,
    DateTime? CreationTimestamp);

/// <summary>What the planner needs to know about a node group.</summary>
/// <param name="Name">Group name.</param>
/// <param name="StorageLimitBytes">Its <c>spec.storageLimit</c> in bytes per node; null when unset (no logical limit).</param>
/// <param name="PvSpec">Its PV template, whose required node affinity selects the member nodes.</param>
internal sealed record GroupModel(string Name, long? StorageLimitBytes, V1PersistentVolumeSpec? PvSpec)
{
    public bool HasMember(V1Node node) => NodeSelectorMatcher.Matches(PvSpec, node);
}

/// <summary>A model placed on a node, through one of its cache's groups.</summary>
internal sealed record Placement(CacheModel Cache, string Group);

/// <summary>Why a model is not placed on a node: it would push the node past its group's storage limit.</summary>
internal sealed record StorageRejection(string Group, long ModelSize, long Used, long Limit)
{
    public string Describe() =>
        $"group {Group}: storageLimit {CacheStatusCalculator.Quantity(Limit)}, {CacheStatusCalculator.Quantity(Used)} already placed";
}

/// <summary>The models one node should hold, and those that do not fit.</summary>
internal sealed record NodePlan(IReadOnlyList<Placement> Placed, IReadOnlyDictionary<CacheRef, StorageRejection> Rejected, long UsedBytes)
{
    public bool IsPlaced(CacheRef cache) => Placed.Any(p => p.Cache.Ref == cache);
}

/// <summary>
/// Decides, for one node, which caches' models it holds: each cache reaches the node through the first of its
/// <c>nodeGroups</c> that the node belongs to (one entry per cache, as KServe's entry identity is
/// (modelName, namespace)), and the logical storage limit of that group bounds the sum of the sizes of the
/// distinct models (by storage key) on the node. Models already on the node keep their place, then older caches
/// come first, so adding a cache never evicts a model that was there before.
/// </summary>
internal static class NodePlanner
{
    public static NodePlan Plan(V1Node node, IEnumerable<CacheModel> caches, Func<string, GroupModel?> groups,
        IReadOnlySet<CacheRef> alreadyOnNode)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(caches);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(alreadyOnNode);

        var candidates = new List<(CacheModel Cache, GroupModel Group)>();
        foreach (var cache in caches)
        {
            foreach (var groupName in cache.NodeGroups)
            {
                var group = groups(groupName);
                if (group is not null && group.HasMember(node))
                {
                    candidates.Add((cache, group));
                    break;
                }
            }
        }

        candidates.Sort((a, b) =>
        {
            var byPresence = alreadyOnNode.Contains(b.Cache.Ref).CompareTo(alreadyOnNode.Contains(a.Cache.Ref));
            if (byPresence != 0)
            {
                return byPresence;
            }

            var byAge = Nullable.Compare(a.Cache.CreationTimestamp, b.Cache.CreationTimestamp);
            if (byAge != 0)
            {
                return byAge;
            }

            var byNs = string.CompareOrdinal(a.Cache.Ref.Namespace ?? "", b.Cache.Ref.Namespace ?? "");
            return byNs != 0 ? byNs : string.CompareOrdinal(a.Cache.Ref.Name, b.Cache.Ref.Name);
        });

        var placed = new List<Placement>();
        var rejected = new Dictionary<CacheRef, StorageRejection>();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        long used = 0;
        foreach (var (cache, group) in candidates)
        {
            if (keys.Contains(cache.StorageKey))
            {
                // Same source URI as a model already placed: one folder on disk, no extra space.
                placed.Add(new Placement(cache, group.Name));
                continue;
            }

            if (group.StorageLimitBytes is { } limit && used + cache.ModelSizeBytes > limit)
            {
                rejected[cache.Ref] = new StorageRejection(group.Name, cache.ModelSizeBytes, used, limit);
                continue;
            }

            keys.Add(cache.StorageKey);
            used += cache.ModelSizeBytes;
            placed.Add(new Placement(cache, group.Name));
        }

        return new NodePlan(placed, rejected, used);
    }
}
