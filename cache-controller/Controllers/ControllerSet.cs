using k8s;
using k8s.Models;
using KServe.Node.Api;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.CacheController.Model;
using KServe.Node.Runtime;
using Microsoft.Extensions.Logging;


namespace KServe.Node.CacheController.Controllers;

/// <summary>
/// The three controllers of the process and their watches:
/// <c>localmodelcache</c> and <c>localmodelnamespacecache</c> (cache volumes and status) and <c>localmodelnode</c>
/// (each node's LocalModelNode and placement labels). Every event maps to keys through indexes or the group
/// membership, never through a list of all nodes.
/// </summary>
internal sealed class ControllerSet : IWorkSignals
{
    private readonly ClusterState _state;

    public ControllerSet(ClusterState state, SharedInformerFactory informers, EventRecorder events, TimeProvider time,
        ILoggerFactory loggers, LeaderElectionOptions? election)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(informers);
        ArgumentNullException.ThrowIfNull(loggers);
        _state = state;
        var options = state.Options;
        var volumes = state.IsvcWatched;

        var clusterKind = new CacheKind<LocalModelCache>(Keys.ClusterFinalizer, state.Caches, CacheObject.From, (c, s) => c.Status = s);
        var clusterBuilder = new ControllerBuilder("localmodelcache", informers)
            .For<LocalModelCache>(NotStatusOnly)
            .Owns<V1PersistentVolume>(options: ClusterState.VolumeInformer)
            .Owns<V1PersistentVolumeClaim>(options: ClusterState.VolumeInformer)
            .Watches<LocalModelNode>(n => EntriesOf(n, namespaced: false), LocalModelNodeChanged)
            .Watches<V1Node>(n => CachesOfNode(n, namespaced: false), NodeMembershipChanged)
            .Watches<LocalModelNodeGroup>(g => CacheKeysOfGroup(g.Metadata.Name, namespaced: false))
            .WithWorkers(options.Workers);
        if (volumes)
        {
            clusterBuilder.Watches<InferenceServiceMetadata>(i => ClusterCacheOf(i), ConsumerChanged);
            if (state.LlmWatched)
            {
                clusterBuilder.Watches<LlmInferenceServiceMetadata>(i => ClusterCacheOf(i), ConsumerChanged);
            }
        }

        var namespaceKind = new CacheKind<LocalModelNamespaceCache>(Keys.NamespaceFinalizer, state.NamespaceCaches, CacheObject.From, (c, s) => c.Status = s);
        var namespaceBuilder = new ControllerBuilder("localmodelnamespacecache", informers)
            .For<LocalModelNamespaceCache>(NotStatusOnly)
            .Owns<V1PersistentVolumeClaim>(options: ClusterState.VolumeInformer)
            .Watches<LocalModelNode>(n => EntriesOf(n, namespaced: true), LocalModelNodeChanged)
            .Watches<V1Node>(n => CachesOfNode(n, namespaced: true), NodeMembershipChanged)
            .Watches<LocalModelNodeGroup>(g => CacheKeysOfGroup(g.Metadata.Name, namespaced: true))
            .WithWorkers(options.Workers);
        if (volumes)
        {
            namespaceBuilder.Watches<InferenceServiceMetadata>(i => NamespaceCacheOf(i), ConsumerChanged);
            if (state.LlmWatched)
            {
                namespaceBuilder.Watches<LlmInferenceServiceMetadata>(i => NamespaceCacheOf(i), ConsumerChanged);
            }
        }

        var nodeBuilder = new ControllerBuilder("localmodelnode", informers)
            .For<V1Node>(NodeChangedForPlacement)
            .Watches<LocalModelNode>(n => [ObjectKey.Cluster(n.Metadata.Name)])
            .Watches<LocalModelCache>(c => NodesOfCache(CacheObject.From(c)), SpecChanged)
            .Watches<LocalModelNamespaceCache>(c => NodesOfCache(CacheObject.From(c)), SpecChanged)
            .Watches<LocalModelNodeGroup>(NodesOfGroup)
            .WithWorkers(options.Workers);

        // Group status only changes through node plans (signalled) and membership, so the group's own events suffice.
        var groupBuilder = new ControllerBuilder("localmodelnodegroup", informers)
            .For<LocalModelNodeGroup>(SpecChangedGroup)
            .WithWorkers(1);

        if (election is not null)
        {
            groupBuilder.WithLeaderElection(election);
            // One Lease and one identity for all three: they share in-memory state, so they lead together.
            clusterBuilder.WithLeaderElection(election);
            namespaceBuilder.WithLeaderElection(election);
            nodeBuilder.WithLeaderElection(election);
        }

        Clusters = clusterBuilder.Build(new CacheReconciler<LocalModelCache>(clusterKind, state, informers, this, events, time,
            loggers.CreateLogger("KServe.Node.CacheController.LocalModelCache")));
        Namespaced = namespaceBuilder.Build(new CacheReconciler<LocalModelNamespaceCache>(namespaceKind, state, informers, this, events, time,
            loggers.CreateLogger("KServe.Node.CacheController.LocalModelNamespaceCache")));
        Nodes = nodeBuilder.Build(new NodeReconciler(state, informers, this, loggers.CreateLogger<NodeReconciler>()));
        Groups = groupBuilder.Build(new NodeGroupReconciler(state, informers));
    }

    public Controller Clusters { get; }

    public Controller Namespaced { get; }

    public Controller Nodes { get; }

    public Controller Groups { get; }

    public IEnumerable<Controller> All => [Clusters, Namespaced, Nodes, Groups];

    public void CacheChanged(CacheRef cache)
    {
        if (cache.IsNamespaced)
        {
            Namespaced.Enqueue(new ObjectKey(cache.Namespace, cache.Name));
        }
        else
        {
            Clusters.Enqueue(ObjectKey.Cluster(cache.Name));
        }
    }

    public void NodeChanged(string node) => Nodes.Enqueue(ObjectKey.Cluster(node));

    public void GroupChanged(string group) => Groups.Enqueue(ObjectKey.Cluster(group));

    // ---- predicates ----

    /// <summary>Skips the echo of a status write (spec, deletion and finalizers unchanged).</summary>
    private static bool NotStatusOnly<T>(ResourceEvent<T> e) where T : class, IKubernetesObject<V1ObjectMeta> =>
        e.Type != ResourceEventType.Updated || e.OldObject is null || SpecChanged(e);

    private static bool SpecChanged<T>(ResourceEvent<T> e) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        if (e.Type != ResourceEventType.Updated || e.OldObject is null)
        {
            return true;
        }

        var o = e.OldObject;
        var n = e.Object;
        return o.Metadata.DeletionTimestamp != n.Metadata.DeletionTimestamp
            || !(o.Metadata.Finalizers ?? []).SequenceEqual(n.Metadata.Finalizers ?? [])
            || o.Metadata.Uid != n.Metadata.Uid
            || !Json.Same(SpecOf(o), SpecOf(n));
    }

    private static LocalModelCacheSpec? SpecOf(object o) => o switch
    {
        LocalModelCache c => c.Spec,
        LocalModelNamespaceCache c => c.Spec,
        _ => null,
    };

    private static bool SpecChangedGroup(ResourceEvent<LocalModelNodeGroup> e) =>
        e.Type != ResourceEventType.Updated || e.OldObject is null
        || !Json.Same(e.OldObject.Spec, e.Object.Spec);

    private static bool LocalModelNodeChanged(ResourceEvent<LocalModelNode> e) =>
        e.Type != ResourceEventType.Updated || e.OldObject is null
        || !Json.Same(e.OldObject.Status, e.Object.Status)
        || !Json.Same(e.OldObject.Spec, e.Object.Spec);

    /// <summary>Node events that can change a cache's status: add, delete, Ready flip, label change (group membership).</summary>
    private static bool NodeMembershipChanged(ResourceEvent<V1Node> e) =>
        e.Type != ResourceEventType.Updated || e.OldObject is null
        || NodeReadiness.IsReady(e.OldObject) != NodeReadiness.IsReady(e.Object)
        || !SameLabels(e.OldObject, e.Object, ignorePlacement: true);

    /// <summary>Node events that can change its LocalModelNode or labels: the above, plus placement label edits by others.</summary>
    private static bool NodeChangedForPlacement(ResourceEvent<V1Node> e) =>
        e.Type != ResourceEventType.Updated || e.OldObject is null
        || NodeReadiness.IsReady(e.OldObject) != NodeReadiness.IsReady(e.Object)
        || !SameLabels(e.OldObject, e.Object, ignorePlacement: false)
        || e.OldObject.Metadata.Uid != e.Object.Metadata.Uid;

    private static bool SameLabels(V1Node a, V1Node b, bool ignorePlacement)
    {
        var la = Filter(a.Metadata.Labels);
        var lb = Filter(b.Metadata.Labels);
        return la.Count == lb.Count && la.All(kv => lb.TryGetValue(kv.Key, out var v) && v == kv.Value);

        Dictionary<string, string> Filter(IDictionary<string, string>? labels) =>
            (labels ?? new Dictionary<string, string>())
                .Where(kv => !ignorePlacement || !kv.Key.StartsWith(Keys.PlacementLabelPrefix, StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
    }

    /// <summary>Consumers matter on create, delete and a change of the cache labels (KServe's predicate).</summary>
    private static bool ConsumerChanged<T>(ResourceEvent<T> e) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        if (e.Type != ResourceEventType.Updated || e.OldObject is null)
        {
            return e.Object.Metadata.Labels?.ContainsKey(Keys.LocalModelLabel) == true;
        }

        string? Label(T o, string key) => o.Metadata.Labels?.TryGetValue(key, out var v) == true ? v : null;
        string? Annotation(T o) => o.Metadata.Annotations?.TryGetValue(Keys.NodeGroupAnnotation, out var v) == true ? v : null;
        return Label(e.OldObject, Keys.LocalModelLabel) != Label(e.Object, Keys.LocalModelLabel)
            || Label(e.OldObject, Keys.LocalModelNamespaceLabel) != Label(e.Object, Keys.LocalModelNamespaceLabel)
            || Annotation(e.OldObject) != Annotation(e.Object);
    }

    // ---- map functions ----

    private static IEnumerable<ObjectKey> EntriesOf(LocalModelNode n, bool namespaced) =>
        (n.Spec?.LocalModels ?? [])
            .Where(m => string.IsNullOrEmpty(m.Namespace) != namespaced)
            .Select(m => namespaced ? new ObjectKey(m.Namespace, m.ModelName) : ObjectKey.Cluster(m.ModelName));

    private IEnumerable<ObjectKey> CachesOfNode(V1Node node, bool namespaced) =>
        _state.GroupsMatching(node).SelectMany(g => CacheKeysOfGroup(g, namespaced)).Distinct();

    private IEnumerable<ObjectKey> CacheKeysOfGroup(string group, bool namespaced) =>
        namespaced
            ? _state.NamespaceCaches.ByIndex(ClusterState.ByNodeGroup, group).Select(c => ObjectKey.From(c))
            : _state.Caches.ByIndex(ClusterState.ByNodeGroup, group).Select(c => ObjectKey.Cluster(c.Metadata.Name));

    private static IEnumerable<ObjectKey> ClusterCacheOf(IKubernetesObject<V1ObjectMeta> o) =>
        o.Metadata.Labels?.TryGetValue(Keys.LocalModelLabel, out var name) == true && !o.Metadata.Labels.ContainsKey(Keys.LocalModelNamespaceLabel)
            ? [ObjectKey.Cluster(name)]
            : [];

    private static IEnumerable<ObjectKey> NamespaceCacheOf(IKubernetesObject<V1ObjectMeta> o) =>
        o.Metadata.Labels?.TryGetValue(Keys.LocalModelLabel, out var name) == true
        && o.Metadata.Labels.TryGetValue(Keys.LocalModelNamespaceLabel, out var ns) && ns == o.Metadata.NamespaceProperty
            ? [new ObjectKey(ns, name)]
            : [];

    /// <summary>The member nodes of the cache's groups, plus every node whose LocalModelNode holds its entry.</summary>
    private IEnumerable<ObjectKey> NodesOfCache(CacheObject cache)
    {
        var nodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var g in cache.Spec.NodeGroups ?? [])
        {
            nodes.UnionWith(_state.MembersOf(g));
        }

        foreach (var lmn in _state.LocalModelNodes.ByIndex(ClusterState.ByModel, cache.Ref.StatusKey))
        {
            nodes.Add(lmn.Metadata.Name);
        }

        return nodes.Select(ObjectKey.Cluster);
    }

    /// <summary>Nodes matching the group (a scan: group changes are rare), plus nodes holding entries placed through it.</summary>
    private IEnumerable<ObjectKey> NodesOfGroup(LocalModelNodeGroup group)
    {
        var nodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in _state.Nodes.List())
        {
            if (group.Selects(node))
            {
                nodes.Add(node.Metadata.Name);
            }
        }

        foreach (var lmn in _state.LocalModelNodes.ByIndex(ClusterState.ByNodeGroup, group.Metadata.Name))
        {
            nodes.Add(lmn.Metadata.Name);
        }

        return nodes.Select(ObjectKey.Cluster);
    }
}
