using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;
using KServe.Node.IsvcController.Model;
using KServe.Node.IsvcController.Placement;
using KServe.Node.IsvcController.Resources;
using KServe.Node.IsvcController.Status;
using KServe.Node.Runtime;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KServe.Node.IsvcController;

/// <summary>
/// Reconciles an InferenceService of ours into a Deployment, Service, HPA and HTTPRoutes, placed on nodes that
/// hold its cached model.
/// </summary>
/// <remarks>
/// Steps, in order:
/// 1. get the InferenceService (gone = done); not ours = leave it (dropping our finalizer if an edit moved it away);
/// 2. deleting: delete the children, drop the finalizer;
/// 3. ensure the finalizer;
/// 4. validate: an invalid spec gets conditions and an event, and no children;
/// 5. match a cache and keep KServe's <c>internal.serving.kserve.io/localmodel*</c> metadata on the object;
/// 6. ensure children (get, create, or merge-patch only on a real diff); while no node holds a cached model the
///    Deployment has 0 replicas and there is no HPA;
/// 7. compute status and write it only when it changed.
/// </remarks>
internal sealed class IsvcReconciler : IReconciler
{
    private static readonly string[] s_decidedPodFields = ["affinity", "initContainers", "nodeSelector", "tolerations"];
    private static readonly string[] s_metadataMaps = ["labels", "annotations"];
    private readonly IsvcControllerOptions _options;
    private readonly EventRecorder _events;
    private readonly TimeProvider _time;
    private readonly ILogger<IsvcReconciler> _logger;
    private readonly Informer<InferenceService> _isvcs;
    private readonly Informer<LocalModelCache> _caches;
    private readonly Informer<LocalModelNamespaceCache> _nsCaches;
    private readonly Informer<LocalModelNode> _nodes;
    private readonly ResourceClient<InferenceService> _isvcClient;
    private readonly ResourceClient<V1Deployment> _deployments;
    private readonly ResourceClient<V1Service> _services;
    private readonly ResourceClient<V2HorizontalPodAutoscaler> _hpas;
    private readonly ResourceClient<HttpRoute> _routes;
    private readonly ResourceClient<V1Ingress> _ingresses;
    private readonly SharedInformerFactory _informers;

    public IsvcReconciler(
        SharedInformerFactory informers,
        EventRecorder events,
        IOptions<IsvcControllerOptions> options,
        TimeProvider time,
        ILogger<IsvcReconciler> logger)
    {
        ArgumentNullException.ThrowIfNull(informers);
        ArgumentNullException.ThrowIfNull(options);
        IsvcResourceTypes.Register();
        _options = options.Value;
        _events = events;
        _time = time;
        _logger = logger;
        _isvcs = informers.Get<InferenceService>();
        _caches = informers.Get<LocalModelCache>();
        _nsCaches = informers.Get<LocalModelNamespaceCache>();
        _nodes = informers.Get<LocalModelNode>();
        _isvcClient = informers.ClientFor<InferenceService>();
        _deployments = informers.ClientFor<V1Deployment>();
        _services = informers.ClientFor<V1Service>();
        _hpas = informers.ClientFor<V2HorizontalPodAutoscaler>();
        _routes = informers.ClientFor<HttpRoute>();
        _ingresses = informers.ClientFor<V1Ingress>();
        _informers = informers;
    }

    public async Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        // 1. get.
        var isvc = _isvcs.Get(key);
        if (isvc is null)
        {
            return ReconcileResult.Done;
        }

        var (spec, readErrors) = Read(isvc);
        var hasFinalizer = isvc.Metadata.Finalizers?.Contains(IsvcNames.Finalizer) == true;
        if (!IsvcValidator.IsOurs(spec, _options) || spec.Deleting)
        {
            // 2. deleting (or not ours): remove what we created, then let go of the object.
            if (hasFinalizer)
            {
                await DeleteChildrenAsync(spec, ct).ConfigureAwait(false);
                await SetFinalizerAsync(isvc, present: false, ct).ConfigureAwait(false);
                Log.Deleted(_logger, spec.Name);
            }
            else
            {
                if (!spec.Deleting && _options.LabelAllConsumers)
                {
                    // Another runtime's InferenceService can use a cache too: KServe's bookkeeping keys go on it (or come off
                    // it) all the same, so that its serving PVC exists and the cache lists it. Nothing is deployed for it.
                    await SyncCacheMetadataAsync(isvc, MatchCache(spec), ct).ConfigureAwait(false);
                }

                Log.NotOurs(_logger, spec.Name, _options.RuntimeName);
            }

            return ReconcileResult.Done;
        }

        // 3. finalizer: children are owned (garbage-collected) too, but the finalizer also cleans up where no
        // garbage collector runs and makes the order explicit.
        if (!hasFinalizer)
        {
            var updated = await SetFinalizerAsync(isvc, present: true, ct).ConfigureAwait(false);
            if (updated is null)
            {
                return ReconcileResult.Done;
            }

            isvc = updated;
        }

        var previous = PreviousConditions(isvc);

        // 4. validate.
        var problems = IsvcValidator.Validate(spec, readErrors, _options);
        if (problems.Count > 0)
        {
            Log.Invalid(_logger, spec.Name, string.Join("; ", problems.Select(p => p.Message)));
            await WriteStatusAsync(isvc, new StatusInputs { Isvc = spec, Problems = problems, Previous = previous }, ct).ConfigureAwait(false);
            await EventOnFlipAsync(isvc, previous, IsvcStatus.PredictorReady, problems[0].Reason, EventRecorder.Warning,
                string.Join("; ", problems.Select(p => p.Message)), ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        // 5. cache.
        var match = MatchCache(spec);
        isvc = await SyncCacheMetadataAsync(isvc, match, ct).ConfigureAwait(false);
        if (isvc is null)
        {
            return ReconcileResult.Done;
        }

        (spec, _) = Read(isvc);
        CacheState? cacheState = null;
        if (match is not null)
        {
            cacheState = CacheReadiness.Compute(match, CacheViews.Entries(match.Cache, n => _nodes.Get(ObjectKey.Cluster(n))));
            Log.CacheMatched(_logger, spec.Name, match.Cache.StatusKey, match.NodeGroup, cacheState.Reason);
        }

        // 6. children.
        var plan = PredictorBuilder.Build(spec, _options, match, podsAllowed: cacheState?.AnyNodeHoldsModel ?? true);
        var deployment = await EnsureDeploymentAsync(isvc, plan, ct).ConfigureAwait(false);
        await EnsureAsync(isvc, _services, plan.Service, null, ct).ConfigureAwait(false);
        var hpaKey = ObjectKey.From(plan.Deployment);
        if (plan.Hpa is not null)
        {
            await EnsureAsync(isvc, _hpas, plan.Hpa, null, ct).ConfigureAwait(false);
        }
        else
        {
            await DeleteOwnedAsync(isvc, _hpas, hpaKey, ct).ConfigureAwait(false);
        }

        var routes = 0;
        if (_options.EnableGatewayApi)
        {
            foreach (var route in plan.Routes.Select(HttpRoute.From))
            {
                await EnsureAsync(isvc, _routes, route, null, ct).ConfigureAwait(false);
                routes++;
            }

            if (plan.Routes.Count == 0)
            {
                await DeleteOwnedAsync(isvc, _routes, new ObjectKey(spec.Namespace, spec.Name), ct).ConfigureAwait(false);
                await DeleteOwnedAsync(isvc, _routes, hpaKey, ct).ConfigureAwait(false);
            }
        }

        // Gateway API off: KServe's Ingress, made once the predictor is ready (an existing one is kept meanwhile).
        var ingressPending = false;
        var ingressKey = new ObjectKey(spec.Namespace, spec.Name);
        if (plan.Ingress is { } ingress)
        {
            if ((deployment?.Status?.AvailableReplicas ?? 0) > 0 || _informers.Get<V1Ingress>(IsvcControllerSetup.Children).Get(ingressKey) is not null)
            {
                await EnsureAsync(isvc, _ingresses, ingress, null, ct).ConfigureAwait(false);
                routes++;
            }
            else
            {
                ingressPending = true;
            }
        }
        else if (!_options.EnableGatewayApi && !_options.DisableIngressCreation)
        {
            await DeleteOwnedAsync(isvc, _ingresses, ingressKey, ct).ConfigureAwait(false);
        }

        // 7. status.
        var inputs = new StatusInputs
        {
            Isvc = spec,
            Cache = match,
            CacheState = cacheState,
            Source = plan.Source,
            Deployment = deployment?.Status ?? new V1DeploymentStatus(),
            Stopped = string.Equals(spec.Annotation(IsvcNames.StopAnnotation), "true", StringComparison.OrdinalIgnoreCase),
            RoutesCreated = routes,
            IngressPending = ingressPending,
            Previous = previous,
        };
        await WriteStatusAsync(isvc, inputs, ct).ConfigureAwait(false);
        if (cacheState is not null)
        {
            await EventOnFlipAsync(isvc, previous, IsvcStatus.ModelCached, cacheState.Reason,
                cacheState.Reason == CacheState.DownloadFailed ? EventRecorder.Warning : EventRecorder.Normal, cacheState.Message, ct).ConfigureAwait(false);
        }

        return ReconcileResult.Done;
    }

    /// <summary>
    /// Adds or removes our finalizer with a merge patch guarded by the resourceVersion (a conflict throws and the
    /// key is retried). A patch rather than a replace: the user's object is never rewritten from a typed copy.
    /// </summary>
    private async Task<InferenceService?> SetFinalizerAsync(InferenceService isvc, bool present, CancellationToken ct)
    {
        var finalizers = (isvc.Metadata.Finalizers ?? []).Where(f => f != IsvcNames.Finalizer).ToList();
        if (present)
        {
            finalizers.Add(IsvcNames.Finalizer);
        }

        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = isvc.Metadata.ResourceVersion,
                ["finalizers"] = new JsonArray([.. finalizers.Select(f => JsonValue.Create(f))]),
            },
        };
        try
        {
            return await _isvcClient.PatchAsync(ObjectKey.From(isvc), PatchKind.Merge, patch.ToJsonString(), ct: ct).ConfigureAwait(false);
        }
        catch (KubernetesApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    private static (IsvcSpec Spec, IReadOnlyList<FieldError> Errors) Read(InferenceService isvc) =>
        IsvcReader.Read(JsonNode.Parse(KubernetesJson.Serialize(isvc))!.AsObject());

    private static List<Condition> PreviousConditions(InferenceService isvc) =>
        [.. (isvc.Status?.Conditions ?? []).Select(c => new Condition(c.Type, c.Status, c.Reason, c.Message,
            c.LastTransitionTime is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)) : DateTimeOffset.MinValue))];

    private CacheMatch? MatchCache(IsvcSpec spec)
    {
        if (!_options.LocalModelEnabled || spec.Annotations.ContainsKey(IsvcNames.DisableLocalModelAnnotation))
        {
            return null;
        }

        // "List order" in KServe is the API server's, which is by name.
        var nsCaches = _nsCaches.List(spec.Namespace).OrderBy(c => c.Metadata.Name, StringComparer.Ordinal).Select(CacheViews.From);
        var caches = _caches.List().OrderBy(c => c.Metadata.Name, StringComparer.Ordinal).Select(CacheViews.From);
        return CacheMatcher.Match(spec.Predictor.StorageUri, spec.Annotation(IsvcNames.NodeGroupAnnotation), nsCaches, caches);
    }

    /// <summary>
    /// Sets (or clears) KServe's localmodel label and annotations on the InferenceService, which the
    /// cache-controller reads to list the service in the cache's status and to create its serving PVC.
    /// </summary>
    private async Task<InferenceService?> SyncCacheMetadataAsync(InferenceService isvc, CacheMatch? match, CancellationToken ct)
    {
        var labels = new Dictionary<string, string?>
        {
            [IsvcNames.LocalModelLabel] = match?.Cache.Name,
            [IsvcNames.LocalModelNamespaceLabel] = match?.Cache.Namespace,
        };
        var annotations = new Dictionary<string, string?>
        {
            [IsvcNames.LocalModelSourceUriAnnotation] = match?.Cache.SourceModelUri,
            [IsvcNames.LocalModelPvcNameAnnotation] = match?.PvcName,
        };
        static bool Same(IDictionary<string, string>? current, Dictionary<string, string?> wanted) =>
            wanted.All(kv => (current?.TryGetValue(kv.Key, out var v) == true ? v : null) == kv.Value);
        if (Same(isvc.Metadata.Labels, labels) && Same(isvc.Metadata.Annotations, annotations))
        {
            return isvc;
        }

        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["labels"] = ToJson(labels),
                ["annotations"] = ToJson(annotations),
            },
        };
        try
        {
            return await _isvcClient.PatchAsync(ObjectKey.From(isvc), PatchKind.Merge, patch.ToJsonString(), ct: ct).ConfigureAwait(false);
        }
        catch (KubernetesApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    private static JsonObject ToJson(Dictionary<string, string?> map)
    {
        var o = new JsonObject();
        foreach (var (k, v) in map)
        {
            o[k] = v;
        }

        return o;
    }

    private async Task<V1Deployment?> EnsureDeploymentAsync(InferenceService isvc, PredictorPlan plan, CancellationToken ct) =>
        await EnsureAsync(isvc, _deployments, plan.Deployment, (patch, actual) =>
        {
            var spec = patch["spec"]!.AsObject();
            var write = PredictorBuilder.ReplicasToWrite(plan, actual?.Spec?.Replicas);
            if (write is null)
            {
                spec.Remove("replicas");
            }
            else
            {
                spec["replicas"] = write.Value;
            }

            // Fields of the pod this controller decides: absent in the desired pod means absent, not "keep".
            var podSpec = spec["template"]!["spec"]!.AsObject();
            foreach (var field in s_decidedPodFields)
            {
                if (!podSpec.ContainsKey(field))
                {
                    podSpec[field] = null;
                }
            }

            var actualNode = actual is null ? null : JsonDiff.ToNode(actual);
            DropStaleLocalModelKeys(patch["metadata"]!.AsObject(), actualNode?["metadata"]);
            DropStaleLocalModelKeys(spec["template"]!["metadata"]!.AsObject(), actualNode?["spec"]?["template"]?["metadata"]);
        }, ct).ConfigureAwait(false);

    /// <summary>A cache match that went away must take its internal keys off the children too (merge patches only add).</summary>
    private static void DropStaleLocalModelKeys(JsonObject desiredMeta, JsonNode? actualMeta)
    {
        foreach (var map in s_metadataMaps)
        {
            if (actualMeta?[map] is not JsonObject actual)
            {
                continue;
            }

            var desired = desiredMeta[map] as JsonObject ?? [];
            desiredMeta[map] = desired;
            foreach (var (k, _) in actual)
            {
                if (k.StartsWith(IsvcNames.LocalModelPrefix, StringComparison.Ordinal) && !desired.ContainsKey(k))
                {
                    desired[k] = null;
                }
            }
        }
    }

    /// <summary>
    /// Get-or-create; on an existing object, a merge patch of labels, annotations and spec only when some
    /// field this controller sets differs (<see cref="JsonDiff.Contains"/>).
    /// </summary>
    private async Task<T?> EnsureAsync<T>(
        InferenceService owner, ResourceClient<T> client, T desired, Action<JsonObject, T?>? adjust, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var key = ObjectKey.From(desired);
        // From the children's informer (a child we made carries the label it selects), not a GET per reconcile. A child
        // of that name without the label is not there: creating it then answers AlreadyExists, and it is read live.
        var actual = _informers.Get<T>(IsvcControllerSetup.Children).Get(key);
        if (actual is null)
        {
            try
            {
                if (adjust is not null)
                {
                    var node = JsonDiff.ToNode(desired).AsObject();
                    adjust(node, null);
                    RemoveNulls(node);
                    desired = KubernetesJson.Deserialize<T>(node.ToJsonString());
                }

                var created = await client.CreateAsync(desired, ct).ConfigureAwait(false);
                Log.ChildWritten(_logger, "Created", client.Type.Kind, key.ToString());
                await RecordAsync(owner, EventRecorder.Normal, "Created", $"Created {client.Type.Kind} {key}", ct).ConfigureAwait(false);
                return created;
            }
            catch (KubernetesApiException e) when (e.IsAlreadyExists)
            {
                actual = await client.GetAsync(key, ct).ConfigureAwait(false) ?? throw new InvalidOperationException($"{client.Type.Kind} {key} exists and then does not", e);
            }
        }

        if (!OwnerReferences.IsControlledBy(actual, owner))
        {
            Log.NotControlled(_logger, client.Type.Kind, key.ToString(), owner.Metadata.Name);
            await RecordAsync(owner, EventRecorder.Warning, "NotOwned", $"{client.Type.Kind} {key} exists and is not controlled by this InferenceService: left as it is", ct).ConfigureAwait(false);
            return actual;
        }

        var desiredNode = JsonDiff.ToNode(desired).AsObject();
        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["labels"] = desiredNode["metadata"]?["labels"]?.DeepClone(),
                ["annotations"] = desiredNode["metadata"]?["annotations"]?.DeepClone() ?? new JsonObject(),
            },
            ["spec"] = desiredNode["spec"]?.DeepClone(),
        };
        adjust?.Invoke(patch, actual);
        if (JsonDiff.Contains(JsonDiff.ToNode(actual), patch))
        {
            return actual;
        }

        var updated = await client.PatchAsync(key, PatchKind.Merge, patch.ToJsonString(), ct: ct).ConfigureAwait(false);
        Log.ChildWritten(_logger, "Updated", client.Type.Kind, key.ToString());
        await RecordAsync(owner, EventRecorder.Normal, "Updated", $"Updated {client.Type.Kind} {key}", ct).ConfigureAwait(false);
        return updated;
    }

    private static void RemoveNulls(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var k in o.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList())
                {
                    o.Remove(k);
                }

                foreach (var (_, v) in o)
                {
                    RemoveNulls(v);
                }

                break;
            case JsonArray a:
                foreach (var v in a)
                {
                    RemoveNulls(v);
                }

                break;
        }
    }

    private async Task DeleteOwnedAsync<T>(InferenceService owner, ResourceClient<T> client, ObjectKey key, CancellationToken ct)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var actual = await client.GetAsync(key, ct).ConfigureAwait(false);
        if (actual is not null && OwnerReferences.IsControlledBy(actual, owner) && await client.DeleteAsync(key, ct: ct).ConfigureAwait(false))
        {
            Log.ChildWritten(_logger, "Deleted", client.Type.Kind, key.ToString());
            await RecordAsync(owner, EventRecorder.Normal, "Deleted", $"Deleted {client.Type.Kind} {key}", ct).ConfigureAwait(false);
        }
    }

    private async Task DeleteChildrenAsync(IsvcSpec spec, CancellationToken ct)
    {
        var predictor = new ObjectKey(spec.Namespace, PredictorBuilder.PredictorName(spec));
        bool Ours(IKubernetesObject<V1ObjectMeta>? o) => o?.Metadata.OwnerReferences?.Any(r => r.Controller == true && r.Uid == spec.Uid) == true;
        async Task Delete<T>(ResourceClient<T> client, ObjectKey key)
            where T : class, IKubernetesObject<V1ObjectMeta>
        {
            if (Ours(await client.GetAsync(key, ct).ConfigureAwait(false)))
            {
                await client.DeleteAsync(key, "Background", ct).ConfigureAwait(false);
            }
        }

        await Delete(_hpas, predictor).ConfigureAwait(false);
        await Delete(_deployments, predictor).ConfigureAwait(false);
        await Delete(_services, predictor).ConfigureAwait(false);
        if (_options.EnableGatewayApi)
        {
            await Delete(_routes, predictor).ConfigureAwait(false);
            await Delete(_routes, new ObjectKey(spec.Namespace, spec.Name)).ConfigureAwait(false);
        }
        else if (!_options.DisableIngressCreation)
        {
            await Delete(_ingresses, new ObjectKey(spec.Namespace, spec.Name)).ConfigureAwait(false);
        }
    }

    private async Task WriteStatusAsync(InferenceService isvc, StatusInputs inputs, CancellationToken ct)
    {
        var json = IsvcStatus.Build(inputs, _options, _time.GetUtcNow());
        var status = KubernetesJson.Deserialize<InferenceServiceStatus>(json.ToJsonString());
        await StatusWriter.UpdateStatusIfChangedAsync(_isvcClient, isvc, o => o.Status = status, ct).ConfigureAwait(false);
    }

    /// <summary>An event when a condition's reason or message changes, not on every reconcile.</summary>
    private async Task EventOnFlipAsync(InferenceService isvc, List<Condition> previous, string type, string reason, string eventType, string message, CancellationToken ct)
    {
        var prev = previous.FirstOrDefault(c => c.Type == type);
        if (prev is not null && prev.Reason == reason && prev.Message == message)
        {
            return;
        }

        await RecordAsync(isvc, eventType, reason, message, ct).ConfigureAwait(false);
    }

    private async Task RecordAsync(InferenceService isvc, string type, string reason, string message, CancellationToken ct)
    {
        try
        {
            await _events.RecordAsync(isvc, type, reason, message, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Events are best effort: a failed event never fails a reconcile.
            Log.EventFailed(_logger, e, isvc.Metadata.Name);
        }
    }
}
