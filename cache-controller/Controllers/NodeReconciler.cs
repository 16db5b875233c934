using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KServe.Node.Api;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.CacheController.Model;
using KServe.Node.Runtime;
using Microsoft.Extensions.Logging;


namespace KServe.Node.CacheController.Controllers;

/// <summary>Queues reconciles across controllers (a node's plan changes a cache's status, and the reverse).</summary>
internal interface IWorkSignals
{
    void CacheChanged(CacheRef cache);

    void NodeChanged(string node);

    void GroupChanged(string group);
}

/// <summary>
/// Reconciles one node (key = node name):
/// 1. Node gone: delete its LocalModelNode (the owner reference does the same where a garbage collector runs).
/// 2. Plan the node's models from every cache reaching it through a group it belongs to, within the groups' storage limits.
/// 3. Write <c>LocalModelNode.spec.localModels</c> when it differs (create it, owned by the Node, for a Ready node);
///    a NotReady node keeps what it has but gets nothing new.
/// 4. Set the placement labels <c>model.kserve-node.io/{storageKey}=true</c> on the Node for the models its agent
///    reports downloaded, and remove the others.
/// </summary>
internal sealed class NodeReconciler(ClusterState state, SharedInformerFactory informers, IWorkSignals signals, ILogger<NodeReconciler> logger)
    : IReconciler
{
    private readonly ResourceClient<LocalModelNode> _lmnClient = informers.ClientFor<LocalModelNode>();
    private readonly ResourceClient<V1Node> _nodeClient = informers.ClientFor<V1Node>();

    public async Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["Kind"] = "Node", ["Name"] = key.Name });
        var nodeKey = ObjectKey.Cluster(key.Name);
        var node = state.Nodes.Get(nodeKey);
        var lmn = state.LocalModelNodes.Get(nodeKey);

        // 1. The node is gone.
        if (node is null)
        {
            Signal(state.SetRejections(key.Name, new Dictionary<CacheRef, StorageRejection>()));
            state.SetUsage(key.Name, null);
            if (lmn is not null && await _lmnClient.DeleteAsync(nodeKey, ct: ct).ConfigureAwait(false))
            {
                Log.LocalModelNodeDeleted(logger, key.Name);
            }

            return ReconcileResult.Done;
        }

        // 2. Plan.
        var ready = NodeReadiness.IsReady(node);
        var existing = lmn?.Spec?.LocalModels ?? [];
        var present = existing.Select(RefOf).ToHashSet();
        var caches = new Dictionary<CacheRef, CacheObject>();
        foreach (var group in state.GroupsMatching(node))
        {
            foreach (var cache in state.CachesOfGroup(group))
            {
                if (!cache.Deleting)
                {
                    caches.TryAdd(cache.Ref, cache);
                }
            }
        }

        var plan = NodePlanner.Plan(node, caches.Values.Select(c => c.ToModel()), state.GetGroup, present);
        Signal(state.SetRejections(key.Name, plan.Rejected));
        if (state.SetUsage(key.Name, plan.UsedBytes))
        {
            foreach (var group in state.GroupsMatching(node))
            {
                signals.GroupChanged(group);
            }
        }

        // 3. The LocalModelNode spec.
        var desired = new List<LocalModelInfo>();
        foreach (var placement in plan.Placed.OrderBy(p => present.Contains(p.Cache.Ref) ? 0 : 1))
        {
            if (ready || present.Contains(placement.Cache.Ref))
            {
                desired.Add(Info(caches[placement.Cache.Ref], placement.Group));
            }
        }

        desired = [.. OrderLike(existing, desired)];
        if (lmn is null)
        {
            if (desired.Count > 0)
            {
                lmn = await CreateAsync(node, desired, ct).ConfigureAwait(false);
            }
        }
        else if (!SameEntries(existing, desired) || !OwnedBy(lmn, node))
        {
            lmn = await Updates.UpdateAsync(_lmnClient, lmn, o =>
            {
                var changed = false;
                if (!SameEntries(o.Spec?.LocalModels ?? [], desired))
                {
                    o.Spec ??= new LocalModelNodeSpec();
                    o.Spec.LocalModels = [.. desired];
                    changed = true;
                }

                if (!OwnedBy(o, node))
                {
                    OwnerReferences.Set(o, node, controller: false, blockOwnerDeletion: false);
                    changed = true;
                }

                return changed;
            }, status: false, ct).ConfigureAwait(false);
            Log.LocalModelNodeUpdated(logger, key.Name, string.Join(",", desired.Select(d => d.StatusKey)));
        }

        // 4. Placement labels.
        await SyncLabelsAsync(node, desired, lmn?.Status?.ModelStatus, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private void Signal(IReadOnlyCollection<CacheRef> changed)
    {
        foreach (var cache in changed)
        {
            signals.CacheChanged(cache);
        }
    }

    private async Task<LocalModelNode?> CreateAsync(V1Node node, List<LocalModelInfo> desired, CancellationToken ct)
    {
        var lmn = new LocalModelNode
        {
            Metadata = new V1ObjectMeta { Name = Naming.LocalModelNode(node.Metadata.Name) },
            Spec = new LocalModelNodeSpec { LocalModels = desired },
        };
        // Owned by its Node (not as controller: the Node does not manage it), so that it goes when the node goes (#6159).
        OwnerReferences.Set(lmn, node, controller: false, blockOwnerDeletion: false);
        try
        {
            var created = await _lmnClient.CreateAsync(lmn, ct).ConfigureAwait(false);
            Log.LocalModelNodeCreated(logger, node.Metadata.Name, desired.Count);
            return created;
        }
        catch (KubernetesApiException e) when (e.IsAlreadyExists)
        {
            // The informer has not seen it yet: retry from a fresh read.
            throw new InvalidOperationException($"LocalModelNode/{node.Metadata.Name} exists but is not cached yet; retrying", e);
        }
    }

    private async Task SyncLabelsAsync(V1Node node, List<LocalModelInfo> entries, IDictionary<string, string>? modelStatus, CancellationToken ct)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (modelStatus is not null && modelStatus.TryGetValue(e.StatusKey, out var s) && s == ModelStatus.ModelDownloaded)
            {
                wanted.Add(Keys.PlacementLabel(StorageKey.Compute(e.SourceModelUri)));
            }
        }

        var labels = node.Metadata.Labels ?? new Dictionary<string, string>();
        var add = wanted.Where(l => !labels.TryGetValue(l, out var v) || v != "true").ToList();
        var remove = labels.Keys.Where(k => k.StartsWith(Keys.PlacementLabelPrefix, StringComparison.Ordinal) && !wanted.Contains(k)).ToList();
        if (add.Count == 0 && remove.Count == 0)
        {
            return;
        }

        var patch = new JsonObject();
        foreach (var l in add)
        {
            patch[l] = "true";
        }

        foreach (var l in remove)
        {
            patch[l] = null;
        }

        var body = new JsonObject { ["metadata"] = new JsonObject { ["labels"] = patch } };
        try
        {
            await _nodeClient.PatchAsync(ObjectKey.Cluster(node.Metadata.Name), PatchKind.Merge, body.ToJsonString(), ct: ct).ConfigureAwait(false);
            Log.PlacementLabels(logger, node.Metadata.Name, string.Join(",", add), string.Join(",", remove));
        }
        catch (KubernetesApiException e) when (e.IsNotFound)
        {
            // The node went away meanwhile; its delete event brings us back.
        }
    }

    private static LocalModelInfo Info(CacheObject cache, string group) => new()
    {
        SourceModelUri = cache.Spec.SourceModelUri,
        ModelName = cache.Ref.Name,
        Namespace = cache.Ref.Namespace,
        NodeGroup = group,
        ServiceAccountName = string.IsNullOrEmpty(cache.Spec.ServiceAccountName) ? null : cache.Spec.ServiceAccountName,
        Storage = cache.Spec.Storage,
    };

    private static CacheRef RefOf(LocalModelInfo info) =>
        string.IsNullOrEmpty(info.Namespace) ? CacheRef.Cluster(info.ModelName) : CacheRef.Namespaced(info.Namespace, info.ModelName);

    /// <summary>Keeps the existing entries in their order (no spurious writes), new ones after.</summary>
    private static IEnumerable<LocalModelInfo> OrderLike(IList<LocalModelInfo> existing, List<LocalModelInfo> desired)
    {
        var position = new Dictionary<CacheRef, int>();
        for (var i = 0; i < existing.Count; i++)
        {
            position.TryAdd(RefOf(existing[i]), i);
        }

        return desired.Select((d, i) => (d, i)).OrderBy(x => position.TryGetValue(RefOf(x.d), out var p) ? p : existing.Count + x.i).Select(x => x.d);
    }

    private static bool SameEntries(IList<LocalModelInfo> a, List<LocalModelInfo> b) =>
        a.Count == b.Count && a.Zip(b).All(p => Json.Same(p.First, p.Second));

    private static bool OwnedBy(LocalModelNode lmn, V1Node node) =>
        lmn.Metadata?.OwnerReferences?.Any(r => r.Uid == node.Metadata.Uid) == true;
}
