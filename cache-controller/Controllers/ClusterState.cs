using k8s;
using k8s.Models;
using KServe.Node.Api;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.CacheController.Model;
using KServe.Node.Runtime;


namespace KServe.Node.CacheController.Controllers;

/// <summary>A cache of either kind, seen uniformly.</summary>
internal sealed record CacheObject(CacheRef Ref, IKubernetesObject<V1ObjectMeta> Raw, LocalModelCacheSpec Spec, LocalModelCacheStatus? Status)
{
    public V1ObjectMeta Meta => Raw.Metadata;

    public bool Deleting => Meta.DeletionTimestamp is not null;

    public static CacheObject From(LocalModelCache c) => new(CacheRef.Cluster(c.Metadata.Name), c, c.Spec ?? new(), c.Status);

    public static CacheObject From(LocalModelNamespaceCache c) =>
        new(CacheRef.Namespaced(c.Metadata.NamespaceProperty, c.Metadata.Name), c, c.Spec ?? new(), c.Status);

    public CacheModel ToModel() => new(Ref, StorageKey.Compute(Spec.SourceModelUri ?? ""), Bytes(Spec.ModelSize) ?? 0,
        [.. Spec.NodeGroups ?? []], Meta.CreationTimestamp);

    internal static long? Bytes(ResourceQuantity? q)
    {
        if (q is null)
        {
            return null;
        }

        try
        {
            var value = q.ToDecimal();
            return value >= long.MaxValue ? long.MaxValue : (long)Math.Ceiling(value);
        }
        catch (FormatException)
        {
            return null;
        }
        catch (OverflowException)
        {
            return long.MaxValue;
        }
    }
}

/// <summary>
/// The controller's view of the cluster, built on the shared informers: caches indexed by node group, LocalModelNodes
/// indexed by the caches they hold, InferenceServices indexed by the cache they use, and the member nodes of each
/// node group kept up to date incrementally, so that no reconcile lists all nodes.
/// </summary>
internal sealed class ClusterState
{
    public const string ByNodeGroup = "nodeGroup";
    public const string ByModel = "model";
    public const string ByClusterCache = "localmodel";
    public const string ByNamespaceCache = "localmodelnamespace";

    /// <summary>Only the volumes this controller made (the purpose label) are watched.</summary>
    public static readonly InformerOptions VolumeInformer = new() { LabelSelector = VolumeBuilder.PurposeLabel };

    private readonly GroupMembership _membership = new();
    private readonly Lock _rejectionsLock = new();
    private readonly Dictionary<string, IReadOnlyDictionary<CacheRef, StorageRejection>> _rejections = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _usage = new(StringComparer.Ordinal);

    public ClusterState(SharedInformerFactory informers, CacheControllerOptions options)
    {
        ArgumentNullException.ThrowIfNull(informers);
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        Caches = informers.Get<LocalModelCache>();
        NamespaceCaches = informers.Get<LocalModelNamespaceCache>();
        Groups = informers.Get<LocalModelNodeGroup>();
        LocalModelNodes = informers.Get<LocalModelNode>();
        Nodes = informers.Get<V1Node>();
        Pvs = informers.Get<V1PersistentVolume>(VolumeInformer);
        Pvcs = informers.Get<V1PersistentVolumeClaim>(VolumeInformer);
        InferenceServices = informers.Get<InferenceServiceMetadata>();
        LlmInferenceServices = informers.Get<LlmInferenceServiceMetadata>();

        Caches.AddIndex(ByNodeGroup, c => c.Spec?.NodeGroups ?? []);
        NamespaceCaches.AddIndex(ByNodeGroup, c => c.Spec?.NodeGroups ?? []);
        LocalModelNodes.AddIndex(ByModel, n => n.Spec?.LocalModels?.Select(m => m.StatusKey) ?? []);
        LocalModelNodes.AddIndex(ByNodeGroup, n => n.Spec?.LocalModels?.Select(m => m.NodeGroup ?? "").Where(g => g.Length > 0).Distinct() ?? []);
        InferenceServices.AddIndex(ByClusterCache, ClusterCacheOf);
        InferenceServices.AddIndex(ByNamespaceCache, NamespaceCacheOf);
        LlmInferenceServices.AddIndex(ByClusterCache, ClusterCacheOf);
        LlmInferenceServices.AddIndex(ByNamespaceCache, NamespaceCacheOf);

        // Registered before any controller wires its handlers, so that membership is current when they map events.
        Nodes.AddEventHandler(e => _membership.OnNode(e.Type, e.Object));
        Groups.AddEventHandler(e => _membership.OnGroup(e.Type, e.Object, Nodes));
    }

    public CacheControllerOptions Options { get; }

    /// <summary>True when InferenceServices are watched (the kind is served and volume management is on).</summary>
    public bool IsvcWatched { get; set; }

    /// <summary>True when LLMInferenceServices are watched (the kind is served and volume management is on).</summary>
    public bool LlmWatched { get; set; }
    public Informer<LocalModelCache> Caches { get; }
    public Informer<LocalModelNamespaceCache> NamespaceCaches { get; }
    public Informer<LocalModelNodeGroup> Groups { get; }
    public Informer<LocalModelNode> LocalModelNodes { get; }
    public Informer<V1Node> Nodes { get; }
    public Informer<V1PersistentVolume> Pvs { get; }
    public Informer<V1PersistentVolumeClaim> Pvcs { get; }
    public Informer<InferenceServiceMetadata> InferenceServices { get; }
    public Informer<LlmInferenceServiceMetadata> LlmInferenceServices { get; }

    /// <summary>The cluster cache an InferenceService uses: the model label without the namespace label.</summary>
    private static IEnumerable<string> ClusterCacheOf(IKubernetesObject<V1ObjectMeta> o) =>
        o.Metadata?.Labels is { } l && l.TryGetValue(Keys.LocalModelLabel, out var name) && !l.ContainsKey(Keys.LocalModelNamespaceLabel)
            ? [name]
            : [];

    /// <summary>The namespace cache (<c>ns/name</c>) an InferenceService uses: both labels, in its own namespace.</summary>
    private static IEnumerable<string> NamespaceCacheOf(IKubernetesObject<V1ObjectMeta> o) =>
        o.Metadata?.Labels is { } l && l.TryGetValue(Keys.LocalModelLabel, out var name)
        && l.TryGetValue(Keys.LocalModelNamespaceLabel, out var ns) && string.Equals(ns, o.Metadata.NamespaceProperty, StringComparison.Ordinal)
            ? [$"{ns}/{name}"]
            : [];

    public CacheObject? GetCache(CacheRef r)
    {
        if (r.IsNamespaced)
        {
            return NamespaceCaches.Get(new ObjectKey(r.Namespace, r.Name)) is { } n ? CacheObject.From(n) : null;
        }

        return Caches.Get(ObjectKey.Cluster(r.Name)) is { } c ? CacheObject.From(c) : null;
    }

    /// <summary>Caches of both kinds that name <paramref name="group"/>.</summary>
    public IEnumerable<CacheObject> CachesOfGroup(string group) =>
        Caches.ByIndex(ByNodeGroup, group).Select(CacheObject.From)
            .Concat(NamespaceCaches.ByIndex(ByNodeGroup, group).Select(CacheObject.From));

    public GroupModel? GetGroup(string name) =>
        Groups.Get(ObjectKey.Cluster(name)) is { } g
            ? new GroupModel(name, CacheObject.Bytes(g.Spec?.StorageLimit), g.Spec?.PersistentVolumeSpec)
            : null;

    /// <summary>The member nodes of a group (from the incremental membership, not a scan).</summary>
    public IReadOnlyCollection<string> MembersOf(string group) => _membership.MembersOf(group);

    /// <summary>The groups a node object matches now (a scan over the groups, which are few).</summary>
    public IEnumerable<string> GroupsMatching(V1Node node) =>
        Groups.List().Where(g => g.Selects(node)).Select(g => g.Metadata.Name);

    /// <summary>Records the rejections of a node's latest plan; returns the caches whose rejection on the node changed.</summary>
    public IReadOnlyCollection<CacheRef> SetRejections(string node, IReadOnlyDictionary<CacheRef, StorageRejection> rejections)
    {
        lock (_rejectionsLock)
        {
            var before = _rejections.GetValueOrDefault(node) ?? new Dictionary<CacheRef, StorageRejection>();
            if (rejections.Count == 0)
            {
                _rejections.Remove(node);
            }
            else
            {
                _rejections[node] = rejections;
            }

            var changed = new HashSet<CacheRef>();
            foreach (var (cache, r) in before)
            {
                if (!rejections.TryGetValue(cache, out var now) || now != r)
                {
                    changed.Add(cache);
                }
            }

            foreach (var cache in rejections.Keys)
            {
                if (!before.ContainsKey(cache))
                {
                    changed.Add(cache);
                }
            }

            return changed;
        }
    }

    /// <summary>Records a node's logical usage (bytes of the models placed on it); true when it changed.</summary>
    public bool SetUsage(string node, long? bytes)
    {
        lock (_rejectionsLock)
        {
            var before = _usage.TryGetValue(node, out var b) ? b : (long?)null;
            if (bytes is null)
            {
                _usage.Remove(node);
            }
            else
            {
                _usage[node] = bytes.Value;
            }

            return before != bytes;
        }
    }

    public long UsageOf(string node)
    {
        lock (_rejectionsLock)
        {
            return _usage.GetValueOrDefault(node);
        }
    }

    public StorageRejection? RejectionOf(string node, CacheRef cache)
    {
        lock (_rejectionsLock)
        {
            return _rejections.GetValueOrDefault(node)?.GetValueOrDefault(cache);
        }
    }

    /// <summary>Member nodes per group, updated from Node and LocalModelNodeGroup events.</summary>
    private sealed class GroupMembership
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<string, V1PersistentVolumeSpec?> _selectors = new(StringComparer.Ordinal);
        private readonly Dictionary<string, HashSet<string>> _members = new(StringComparer.Ordinal);

        public IReadOnlyCollection<string> MembersOf(string group)
        {
            lock (_lock)
            {
                return _members.TryGetValue(group, out var m) ? [.. m] : [];
            }
        }

        public void OnNode(ResourceEventType type, V1Node node)
        {
            var name = node.Metadata?.Name;
            if (name is null)
            {
                return;
            }

            lock (_lock)
            {
                foreach (var (group, spec) in _selectors)
                {
                    var members = _members[group];
                    if (type != ResourceEventType.Deleted && NodeSelectorMatcher.Matches(spec, node))
                    {
                        members.Add(name);
                    }
                    else
                    {
                        members.Remove(name);
                    }
                }
            }
        }

        public void OnGroup(ResourceEventType type, LocalModelNodeGroup group, Informer<V1Node> nodes)
        {
            var name = group.Metadata?.Name;
            if (name is null)
            {
                return;
            }

            if (type == ResourceEventType.Deleted)
            {
                lock (_lock)
                {
                    _selectors.Remove(name);
                    _members.Remove(name);
                }

                return;
            }

            var spec = group.Spec?.PersistentVolumeSpec;
            lock (_lock)
            {
                if (_selectors.TryGetValue(name, out var old) && _members.ContainsKey(name)
                    && Json.Same(old?.NodeAffinity, spec?.NodeAffinity))
                {
                    return;
                }

                // A new or re-targeted group: one pass over the cached nodes (group changes are rare; node events are
                // not). Done under the lock so that a node event cannot slip between the scan and the store; node
                // handlers run outside the informer's lock, so this cannot deadlock.
                var members = new HashSet<string>(StringComparer.Ordinal);
                foreach (var node in nodes.List())
                {
                    if (NodeSelectorMatcher.Matches(spec, node))
                    {
                        members.Add(node.Metadata.Name);
                    }
                }

                _selectors[name] = spec;
                _members[name] = members;
            }
        }
    }
}
