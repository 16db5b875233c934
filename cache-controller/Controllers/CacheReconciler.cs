using k8s;
using k8s.Models;
using KServe.Node.Api;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.CacheController.Model;
using KServe.Node.Runtime;
using Microsoft.Extensions.Logging;


namespace KServe.Node.CacheController.Controllers;

/// <summary>How the two cache kinds differ for the reconciler.</summary>
internal sealed record CacheKind<T>(string Finalizer, Informer<T> Informer, Func<T, CacheObject> ToCache, Action<T, LocalModelCacheStatus> SetStatus)
    where T : class, IKubernetesObject<V1ObjectMeta>;

/// <summary>
/// Reconciles one cache (spec §2.3/§2.4, with the gaps of §2.8/§2.9 fixed):
/// 1. Read it from the informer (gone = done).
/// 2. Deleting: wait until no LocalModelNode holds its entry (the node controller drops entries of deleting caches,
///    whether or not their node group still exists), delete the volumes that cannot be owned (and the owned ones,
///    which a garbage collector would also take), then drop the finalizer.
/// 3. Ensure the finalizer.
/// 4. Ensure the download PV/PVC of each existing group (create if absent, never update); delete those of groups no
///    longer listed.
/// 5. InferenceService bookkeeping: serving PV/PVC per consumer namespace, cleanup of namespaces without consumers
///    (skipped with <c>disableVolumeManagement</c>).
/// 6. Status from the member nodes of its groups only (nodes that left or were deleted vanish), with conditions;
///    written only when it changed (conflicts retried), with an Event per condition flip.
/// </summary>
internal sealed class CacheReconciler<T>(
    CacheKind<T> kind,
    ClusterState state,
    SharedInformerFactory informers,
    IWorkSignals signals,
    EventRecorder events,
    TimeProvider time,
    ILogger logger) : IReconciler
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    private readonly ResourceClient<T> _client = informers.ClientFor<T>();
    private readonly ResourceClient<V1PersistentVolume> _pvs = informers.ClientFor<V1PersistentVolume>();
    private readonly ResourceClient<V1PersistentVolumeClaim> _pvcs = informers.ClientFor<V1PersistentVolumeClaim>();

    private CacheControllerOptions Options => state.Options;

    public async Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        // 1.
        var raw = kind.Informer.Get(key);
        if (raw is null)
        {
            return ReconcileResult.Done;
        }

        var cache = kind.ToCache(raw);
        using var scope = logger.BeginScope(new Dictionary<string, object>
        {
            ["Kind"] = cache.Ref.Kind, ["Namespace"] = cache.Ref.Namespace ?? "", ["Name"] = cache.Ref.Name,
        });
        var groupNames = (cache.Spec.NodeGroups ?? []).Distinct(StringComparer.Ordinal).ToList();
        var groups = groupNames.Select(g => (Name: g, Obj: state.Groups.Get(ObjectKey.Cluster(g)))).ToList();
        var found = groups.Where(g => g.Obj is not null).Select(g => (g.Name, Obj: g.Obj!)).ToList();
        var missing = groups.Where(g => g.Obj is null).Select(g => g.Name).ToList();

        // 2.
        if (cache.Deleting)
        {
            return await FinalizeAsync(raw, cache, groupNames, ct).ConfigureAwait(false);
        }

        // 3.
        if (!(raw.Metadata.Finalizers?.Contains(kind.Finalizer) ?? false))
        {
            raw = await Finalizers.AddAsync(_client, raw, kind.Finalizer, ct).ConfigureAwait(false);
            if (raw is null)
            {
                return ReconcileResult.Done;
            }
        }

        var owner = new CacheOwner(cache.Ref, raw.Metadata.Uid);

        // 4.
        foreach (var (name, group) in found)
        {
            if (group.Spec?.PersistentVolumeSpec is { } pvSpec)
            {
                await EnsurePvAsync(cache, VolumeBuilder.DownloadPv(owner, name, pvSpec), ct).ConfigureAwait(false);
            }

            if (group.Spec?.PersistentVolumeClaimSpec is { } pvcSpec)
            {
                await EnsurePvcAsync(cache, VolumeBuilder.DownloadPvc(owner, name, Options.JobNamespace, pvcSpec), ct).ConfigureAwait(false);
            }
        }

        await DeleteVolumesOfRemovedGroupsAsync(cache, groupNames, ct).ConfigureAwait(false);

        // 5.
        List<NamespacedName>? isvcs = null;
        List<NamespacedName>? llmIsvcs = null;
        if (!Options.DisableVolumeManagement)
        {
            (isvcs, llmIsvcs) = await ReconcileConsumersAsync(cache, owner, found, ct).ConfigureAwait(false);
        }

        // 6.
        var members = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in found)
        {
            members.UnionWith(state.MembersOf(name));
        }

        var memberNodes = new List<MemberNode>(members.Count);
        foreach (var nodeName in members)
        {
            var node = state.Nodes.Get(ObjectKey.Cluster(nodeName));
            if (node is null)
            {
                continue;
            }

            string? modelStatus = null;
            state.LocalModelNodes.Get(ObjectKey.Cluster(nodeName))?.Status?.ModelStatus?.TryGetValue(cache.Ref.StatusKey, out modelStatus);
            memberNodes.Add(new MemberNode(nodeName, NodeReadiness.IsReady(node), modelStatus, state.RejectionOf(nodeName, cache.Ref)));
        }

        var before = cache.Status?.Conditions?.ToList();
        var result = CacheStatusCalculator.Compute(memberNodes, missing, before, raw.Metadata.Generation ?? 0, time.GetUtcNow().UtcDateTime);
        var written = await StatusWriter.UpdateStatusIfChangedAsync(_client, raw, o =>
        {
            var old = kind.ToCache(o).Status;
            var status = new LocalModelCacheStatus
            {
                NodeStatus = result.NodeStatus.Count == 0 ? null : new Dictionary<string, string>(result.NodeStatus, StringComparer.Ordinal),
                Copies = new ModelCopies { Available = NonZero(result.Available), Total = NonZero(result.Total), Failed = NonZero(result.Failed) },
                InferenceServices = Options.DisableVolumeManagement ? old?.InferenceServices : NullIfEmpty(isvcs),
                LlmInferenceServices = Options.DisableVolumeManagement ? old?.LlmInferenceServices : NullIfEmpty(llmIsvcs),
                Conditions = [.. result.Conditions],
                ObservedGeneration = o.Metadata.Generation,
            };
            kind.SetStatus(o, status);
        }, ct).ConfigureAwait(false);

        if (written is not null && !ReferenceEquals(written, raw))
        {
            Log.StatusWritten(logger, cache.Ref.ToString(), result.Available, result.Total, result.Failed);
            var first = before is null || before.Count == 0;
            foreach (var c in ConditionSet.Flipped(before, result.Conditions))
            {
                var problem = c.Type == CacheConditions.Ready ? c.Status != "True" : c.Status == "True";
                // The first status starts not ready and without problems: that is not news.
                if (first && (c.Type == CacheConditions.Ready ? problem : !problem))
                {
                    continue;
                }

                await events.RecordAsync(written, problem ? EventRecorder.Warning : EventRecorder.Normal,
                    c.Reason ?? c.Type, $"{c.Type}={c.Status}: {c.Message}", ct).ConfigureAwait(false);
            }
        }

        return ReconcileResult.Done;
    }

    // KServe's counters are omitempty: zero is left out of the JSON.
    private static int? NonZero(int n) => n == 0 ? null : n;

    private static List<NamespacedName>? NullIfEmpty(List<NamespacedName>? list) => list is { Count: > 0 } ? list : null;

    private async Task<ReconcileResult> FinalizeAsync(T raw, CacheObject cache, List<string> groupNames, CancellationToken ct)
    {
        if (!(raw.Metadata.Finalizers?.Contains(kind.Finalizer) ?? false))
        {
            return ReconcileResult.Done;
        }

        var holders = state.LocalModelNodes.ByIndex(ClusterState.ByModel, cache.Ref.StatusKey);
        if (holders.Count > 0)
        {
            Log.WaitingForNodes(logger, cache.Ref.ToString(), holders.Count);
            foreach (var lmn in holders)
            {
                signals.NodeChanged(lmn.Metadata.Name);
            }

            // The LocalModelNode updates bring this key back; the delay is only a safety net.
            return ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(10));
        }

        // Volumes by name (KServe's) and by label (anything else this controller made for the cache).
        var consumerNamespaces = (cache.Status?.InferenceServices ?? []).Concat(cache.Status?.LlmInferenceServices ?? [])
            .Select(n => n.Namespace ?? "").Where(n => n.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        if (cache.Ref.IsNamespaced)
        {
            consumerNamespaces = [cache.Ref.Namespace!];
        }

        var pvNames = new HashSet<string>(StringComparer.Ordinal);
        var pvcKeys = new HashSet<ObjectKey>();
        foreach (var group in groupNames)
        {
            pvNames.Add(Naming.DownloadPv(cache.Ref, group));
            pvcKeys.Add(new ObjectKey(Options.JobNamespace, Naming.DownloadPvc(cache.Ref, group)));
            foreach (var ns in consumerNamespaces)
            {
                pvNames.Add(Naming.ServingPv(cache.Ref, group, ns));
                pvcKeys.Add(new ObjectKey(ns, Naming.ServingPvc(cache.Ref, group)));
            }
        }

        foreach (var pv in OwnVolumes(state.Pvs))
        {
            pvNames.Add(pv.Metadata.Name);
        }

        foreach (var pvc in OwnVolumes(state.Pvcs))
        {
            pvcKeys.Add(ObjectKey.From(pvc));
        }

        foreach (var key in pvcKeys)
        {
            await DeleteAsync(_pvcs, key, cache, "PersistentVolumeClaim", ct).ConfigureAwait(false);
        }

        foreach (var name in pvNames)
        {
            await DeleteAsync(_pvs, ObjectKey.Cluster(name), cache, "PersistentVolume", ct).ConfigureAwait(false);
        }

        await Finalizers.RemoveAsync(_client, raw, kind.Finalizer, ct).ConfigureAwait(false);
        Log.FinalizerRemoved(logger, cache.Ref.ToString());
        return ReconcileResult.Done;

        IEnumerable<TV> OwnVolumes<TV>(Informer<TV> informer) where TV : class, IKubernetesObject<V1ObjectMeta> =>
            cache.Ref.Name.Length > 63 ? [] : informer.ByLabel(VolumeBuilder.CacheLabel, cache.Ref.Name).Where(v => IsOwn(v, cache.Ref));
    }

    private static bool IsOwn(IKubernetesObject<V1ObjectMeta> volume, CacheRef cache)
    {
        var labels = volume.Metadata.Labels;
        if (labels is null || !labels.TryGetValue(VolumeBuilder.CacheLabel, out var name) || name != cache.Name)
        {
            return false;
        }

        labels.TryGetValue(VolumeBuilder.CacheNamespaceLabel, out var ns);
        return string.Equals(ns ?? "", cache.Namespace ?? "", StringComparison.Ordinal);
    }

    private async Task DeleteVolumesOfRemovedGroupsAsync(CacheObject cache, List<string> groupNames, CancellationToken ct)
    {
        if (cache.Ref.Name.Length > 63)
        {
            return;
        }

        bool Stale(IKubernetesObject<V1ObjectMeta> v) =>
            IsOwn(v, cache.Ref) && v.Metadata.Labels.TryGetValue(VolumeBuilder.NodeGroupLabel, out var g) && !groupNames.Contains(g);

        foreach (var pvc in state.Pvcs.ByLabel(VolumeBuilder.CacheLabel, cache.Ref.Name).Where(Stale).ToList())
        {
            await DeleteAsync(_pvcs, ObjectKey.From(pvc), cache, "PersistentVolumeClaim", ct).ConfigureAwait(false);
        }

        foreach (var pv in state.Pvs.ByLabel(VolumeBuilder.CacheLabel, cache.Ref.Name).Where(Stale).ToList())
        {
            await DeleteAsync(_pvs, ObjectKey.From(pv), cache, "PersistentVolume", ct).ConfigureAwait(false);
        }
    }

    private async Task<(List<NamespacedName>, List<NamespacedName>)> ReconcileConsumersAsync(CacheObject cache, CacheOwner owner,
        List<(string Name, LocalModelNodeGroup Obj)> found, CancellationToken ct)
    {
        var index = cache.Ref.IsNamespaced ? ClusterState.ByNamespaceCache : ClusterState.ByClusterCache;
        var indexValue = cache.Ref.IsNamespaced ? cache.Ref.StatusKey : cache.Ref.Name;
        var groupsByNs = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        var defaultGroup = cache.Spec.NodeGroups?.FirstOrDefault();

        List<NamespacedName> Collect(IEnumerable<IKubernetesObject<V1ObjectMeta>> consumers)
        {
            var list = new List<NamespacedName>();
            foreach (var c in consumers.OrderBy(c => c.Metadata.NamespaceProperty, StringComparer.Ordinal).ThenBy(c => c.Metadata.Name, StringComparer.Ordinal))
            {
                var ns = c.Metadata.NamespaceProperty ?? "";
                list.Add(new NamespacedName { Namespace = ns, Name = c.Metadata.Name });
                string? group;
                if (c.Metadata.Annotations?.TryGetValue(Keys.NodeGroupAnnotation, out var wanted) == true)
                {
                    group = cache.Spec.NodeGroups?.Contains(wanted) == true ? wanted : null;
                    if (group is null)
                    {
                        Log.UnknownNodeGroup(logger, cache.Ref.ToString(), $"{ns}/{c.Metadata.Name}", wanted);
                    }
                }
                else
                {
                    group = defaultGroup;
                }

                if (!groupsByNs.TryGetValue(ns, out var set))
                {
                    groupsByNs[ns] = set = new SortedSet<string>(StringComparer.Ordinal);
                }

                if (group is not null)
                {
                    set.Add(group);
                }
            }

            return list;
        }

        var isvcs = Collect(state.IsvcWatched && state.InferenceServices.HasSynced ? state.InferenceServices.ByIndex(index, indexValue) : []);
        var llm = Collect(state.LlmWatched && state.LlmInferenceServices.HasSynced ? state.LlmInferenceServices.ByIndex(index, indexValue) : []);

        // Namespaces that had consumers and have none now lose their serving claims (KServe's cleanup).
        var previous = (cache.Status?.InferenceServices ?? []).Concat(cache.Status?.LlmInferenceServices ?? [])
            .Select(n => n.Namespace ?? "").Where(n => n.Length > 0).ToHashSet(StringComparer.Ordinal);
        foreach (var ns in previous.Where(ns => !groupsByNs.ContainsKey(ns)))
        {
            foreach (var group in cache.Spec.NodeGroups ?? [])
            {
                await DeleteAsync(_pvcs, new ObjectKey(ns, Naming.ServingPvc(cache.Ref, group)), cache, "PersistentVolumeClaim", ct).ConfigureAwait(false);
                if (cache.Ref.IsNamespaced)
                {
                    await DeleteAsync(_pvs, ObjectKey.Cluster(Naming.ServingPv(cache.Ref, group, ns)), cache, "PersistentVolume", ct).ConfigureAwait(false);
                }
            }
        }

        var byName = found.ToDictionary(f => f.Name, f => f.Obj, StringComparer.Ordinal);
        foreach (var (ns, groups) in groupsByNs)
        {
            foreach (var group in groups)
            {
                if (!byName.TryGetValue(group, out var g))
                {
                    continue;
                }

                if (g.Spec?.PersistentVolumeSpec is { } pvSpec)
                {
                    await EnsurePvAsync(cache, VolumeBuilder.ServingPv(owner, group, ns, pvSpec), ct).ConfigureAwait(false);
                }

                if (g.Spec?.PersistentVolumeClaimSpec is { } pvcSpec)
                {
                    await EnsurePvcAsync(cache, VolumeBuilder.ServingPvc(owner, group, ns, pvcSpec), ct).ConfigureAwait(false);
                }
            }
        }

        return (isvcs, llm);
    }

    private async Task EnsurePvAsync(CacheObject cache, V1PersistentVolume pv, CancellationToken ct)
    {
        if (state.Pvs.Get(ObjectKey.Cluster(pv.Metadata.Name)) is not null)
        {
            return;
        }

        try
        {
            await _pvs.CreateAsync(pv, ct).ConfigureAwait(false);
            Log.Created(logger, cache.Ref.ToString(), "PersistentVolume", pv.Metadata.Name);
        }
        catch (KubernetesApiException e) when (e.IsAlreadyExists)
        {
            // Made earlier (not yet in the informer) or by KServe: existing volumes are never updated.
        }
    }

    private async Task EnsurePvcAsync(CacheObject cache, V1PersistentVolumeClaim pvc, CancellationToken ct)
    {
        if (state.Pvcs.Get(ObjectKey.From(pvc)) is not null)
        {
            return;
        }

        try
        {
            await _pvcs.CreateAsync(pvc, ct).ConfigureAwait(false);
            Log.Created(logger, cache.Ref.ToString(), "PersistentVolumeClaim", $"{pvc.Metadata.NamespaceProperty}/{pvc.Metadata.Name}");
        }
        catch (KubernetesApiException e) when (e.IsAlreadyExists)
        {
        }
        catch (KubernetesApiException e) when (e.IsNotFound)
        {
            // The namespace does not exist (yet); the next event retries.
        }
    }

    private async Task DeleteAsync<TV>(ResourceClient<TV> client, ObjectKey key, CacheObject cache, string what, CancellationToken ct)
        where TV : class, IKubernetesObject<V1ObjectMeta>
    {
        if (await client.DeleteAsync(key, ct: ct).ConfigureAwait(false))
        {
            Log.Deleted(logger, cache.Ref.ToString(), what, key.ToString());
        }
    }
}
