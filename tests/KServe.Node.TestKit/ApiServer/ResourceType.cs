using System.Collections.Concurrent;
using System.Text.Json.Nodes;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>One served resource of one group/version, built in or from a CRD.</summary>
internal sealed class ResourceType
{
    public required string Group { get; init; }
    public required string Version { get; init; }
    public required string Kind { get; init; }
    public required string Plural { get; init; }
    public required string Singular { get; init; }
    public required bool Namespaced { get; init; }
    public string[] ShortNames { get; init; } = [];
    public string[] Categories { get; init; } = [];
    public bool HasStatus { get; init; }
    /// <summary>metadata.generation is maintained (kinds with a spec, every custom resource).</summary>
    public bool HasGeneration { get; init; }
    public bool IsCustom { get; init; }
    /// <summary>openAPIV3Schema of this version (custom resources only).</summary>
    public JsonObject? Schema { get; init; }
    public JsonArray? PrinterColumns { get; init; }
    /// <summary>Fields accepted in a fieldSelector besides metadata.name / metadata.namespace.</summary>
    public string[] SelectableFields { get; init; } = [];
    public required ResourceStore Store { get; init; }

    public string GroupVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";
    public string ListKind => Kind + "List";

    /// <summary>How the apiserver names the resource in messages: "pods" or "deployments.apps".</summary>
    public string QualifiedResource => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    /// <summary>How the apiserver names the kind in Invalid messages: "Pod" or "LocalModelCache.serving.kserve.io".</summary>
    public string QualifiedKind => Group.Length == 0 ? Kind : $"{Kind}.{Group}";

    public static readonly string[] AllVerbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
}

/// <summary>The resources the server knows: built-in kinds plus those of applied CRDs.</summary>
internal sealed class ResourceRegistry
{
    private readonly ConcurrentDictionary<(string Group, string Version, string Plural), ResourceType> _types = new();
    private readonly ConcurrentDictionary<(string Group, string Plural), ResourceStore> _stores = new();
    private readonly TestApiServerState _state;

    public ResourceRegistry(TestApiServerState state)
    {
        _state = state;
        AddBuiltIns();
    }

    public IEnumerable<ResourceType> All => _types.Values;

    public IEnumerable<ResourceStore> Stores => _stores.Values;

    public ResourceType? Find(string group, string version, string plural) =>
        _types.TryGetValue((group, version, plural), out var t) ? t : null;

    public ResourceType? FindByKind(string apiVersion, string kind)
    {
        var slash = apiVersion.IndexOf('/', StringComparison.Ordinal);
        var group = slash < 0 ? "" : apiVersion[..slash];
        var version = slash < 0 ? apiVersion : apiVersion[(slash + 1)..];
        foreach (var t in _types.Values)
        {
            if (t.Group == group && t.Version == version && t.Kind == kind)
            {
                return t;
            }
        }
        return null;
    }

    public ResourceStore StoreFor(string group, string plural) =>
        _stores.GetOrAdd((group, plural), k => new ResourceStore(_state, k.Group, k.Plural));

    public void Register(ResourceType type) => _types[(type.Group, type.Version, type.Plural)] = type;

    public void Unregister(string group, string plural)
    {
        foreach (var key in _types.Keys)
        {
            if (key.Group == group && key.Plural == plural)
            {
                _types.TryRemove(key, out _);
            }
        }
        if (_stores.TryRemove((group, plural), out var store))
        {
            store.Close();
        }
    }

    public void RemoveVersionsExcept(string group, string plural, HashSet<string> keep)
    {
        foreach (var key in _types.Keys)
        {
            if (key.Group == group && key.Plural == plural && !keep.Contains(key.Version))
            {
                _types.TryRemove(key, out _);
            }
        }
    }

    private void Add(string group, string version, string kind, string plural, bool namespaced, bool status, bool generation,
        string[]? shortNames = null, string[]? fields = null, string[]? categories = null)
    {
        Register(new ResourceType
        {
            Group = group,
            Version = version,
            Kind = kind,
            Plural = plural,
            Singular = kind.ToLowerInvariant(),
            Namespaced = namespaced,
            HasStatus = status,
            HasGeneration = generation,
            ShortNames = shortNames ?? [],
            SelectableFields = fields ?? [],
            Categories = categories ?? [],
            Store = StoreFor(group, plural),
        });
    }

    private void AddBuiltIns()
    {
        string[] eventFields =
        [
            "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
            "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
            "reason", "reportingComponent", "source", "type",
        ];
        Add("", "v1", "Node", "nodes", false, true, false, ["no"], ["spec.unschedulable"]);
        Add("", "v1", "Namespace", "namespaces", false, true, false, ["ns"], ["status.phase"]);
        Add("", "v1", "PersistentVolume", "persistentvolumes", false, true, false, ["pv"]);
        Add("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true, false, ["pvc"]);
        Add("", "v1", "Secret", "secrets", true, false, false, null, ["type"]);
        Add("", "v1", "ServiceAccount", "serviceaccounts", true, false, false, ["sa"]);
        Add("", "v1", "ConfigMap", "configmaps", true, false, false, ["cm"]);
        Add("", "v1", "Event", "events", true, false, false, ["ev"], eventFields);
        Add("", "v1", "Service", "services", true, true, false, ["svc"], ["spec.clusterIP", "spec.type"], ["all"]);
        Add("", "v1", "Pod", "pods", true, true, false, ["po"],
            ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.phase", "status.podIP", "status.nominatedNodeName"],
            ["all"]);
        Add("apps", "v1", "Deployment", "deployments", true, true, true, ["deploy"], null, ["all"]);
        Add("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, true, true, ["hpa"], null, ["all"]);
        Add("batch", "v1", "Job", "jobs", true, true, true, null, ["status.successful"], ["all"]);
        Add("coordination.k8s.io", "v1", "Lease", "leases", true, false, false);
        Add("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", true, true, true);
        Add("networking.k8s.io", "v1", "Ingress", "ingresses", true, true, true, ["ing"]);
        Add("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, false, false);
        Add("events.k8s.io", "v1", "Event", "events", true, false, false, ["ev"],
            ["regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "reason", "reportingController", "type"]);
        Add("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", false, false, true);
        Add("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", false, false, true);
        Add("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, true, true, ["crd", "crds"]);
    }
}
