using System.Text.Json.Nodes;
using KServe.Node.Api.Serialization;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;

namespace KServe.Node.Api.Tests.Crds;

/// <summary>
/// The CRDs this project ships. Names, scopes, required lists, CEL rules, minItems and enums follow
/// KServe's full CRDs (spec §1); printer columns, short names and the non-negative size patterns are this
/// project's additions. Enum values come from the C# constant classes, so they cannot drift either.
/// </summary>
internal static class CrdDefinitions
{
    public const string LocalModelFolder = "daemonset/crds";
    public const string OptionalFolder = "daemonset/crds/optional";

    private static readonly PrinterColumn Age = new("Age", "date", ".metadata.creationTimestamp");

    private static PrinterColumn ReadyCondition() => new("Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status");

    public static IReadOnlyList<CrdDefinition> All { get; } =
    [
        Cache(typeof(LocalModelCache), LocalModelCache.KubePluralName, LocalModelCache.KubeSingularName, LocalModelCache.KubeListKind, "Cluster", "lmc"),
        Cache(typeof(LocalModelNamespaceCache), LocalModelNamespaceCache.KubePluralName, LocalModelNamespaceCache.KubeSingularName, LocalModelNamespaceCache.KubeListKind, "Namespaced", "lmnc"),
        new(
            typeof(LocalModelNodeGroup),
            LocalModelNodeGroup.KubePluralName,
            LocalModelNodeGroup.KubeSingularName,
            LocalModelNodeGroup.KubeListKind,
            "Cluster",
            ["lmng"],
            StatusSubresource: false, // KServe's CRD has none; the cache-controller writes status through the main resource.
            [
                new("StorageLimit", "string", ".spec.storageLimit"),
                new("Used", "string", ".status.used"),
                new("Available", "string", ".status.available"),
                Age,
                new("StorageClass", "string", ".spec.persistentVolumeSpec.storageClassName", 1),
            ],
            OpaqueBuiltins: false,
            new Dictionary<string, Action<JsonObject>>
            {
                ["spec"] = Required("persistentVolumeClaimSpec", "persistentVolumeSpec", "storageLimit"),
                ["spec.storageLimit"] = NonNegativeQuantity,
            },
            $"{LocalModelFolder}/serving.kserve.io_localmodelnodegroups.yaml"),
        new(
            typeof(LocalModelNode),
            LocalModelNode.KubePluralName,
            LocalModelNode.KubeSingularName,
            LocalModelNode.KubeListKind,
            "Cluster",
            ["lmn"],
            StatusSubresource: true,
            [
                new("Models", "string", ".spec.localModels[*].modelName"),
                new("Used", "string", ".status.storage.used"),
                new("Capacity", "string", ".status.storage.capacity"),
                ReadyCondition(),
                Age,
            ],
            OpaqueBuiltins: false,
            new Dictionary<string, Action<JsonObject>>
            {
                ["spec"] = Required("localModels"),
                ["spec.localModels[]"] = Required("modelName", "sourceModelUri"),
                ["status.modelStatus{}"] = Enum(ModelStatus.All),
                ["status.conditions"] = ListMapKeyedBy("type"),
                ["status.conditions[].status"] = Enum(ConditionStatus.All),
                ["status.modelProgress{}.bytesDone"] = Minimum(0),
                ["status.modelProgress{}.bytesTotal"] = Minimum(0),
                ["status.storage.capacity"] = NonNegativeQuantity,
                ["status.storage.used"] = NonNegativeQuantity,
            },
            $"{LocalModelFolder}/serving.kserve.io_localmodelnodes.yaml"),
        new(
            typeof(InferenceService),
            InferenceService.KubePluralName,
            InferenceService.KubeSingularName,
            InferenceService.KubeListKind,
            "Namespaced",
            [InferenceService.KubeShortName],
            StatusSubresource: true,
            [
                new("URL", "string", ".status.url"),
                new("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
                new("Prev", "integer", ".status.components.predictor.traffic[?(@.tag=='prev')].percent"),
                new("Latest", "integer", ".status.components.predictor.traffic[?(@.latestRevision==true)].percent"),
                new("PrevRolledoutRevision", "string", ".status.components.predictor.traffic[?(@.tag=='prev')].revisionName", 1),
                new("LatestReadyRevision", "string", ".status.components.predictor.traffic[?(@.latestRevision==true)].revisionName", 1),
                Age,
            ],
            OpaqueBuiltins: true,
            new Dictionary<string, Action<JsonObject>>
            {
                ["spec"] = Required("predictor"),
                ["spec.predictor.minReplicas"] = Minimum(0),
                ["spec.predictor.maxReplicas"] = Minimum(0),
                ["spec.predictor.scaleMetric"] = Enum(ScaleMetric.All),
                ["spec.predictor.scaleMetricType"] = Enum(MetricTargetType.All),
                ["spec.predictor.autoScaling.metrics[]"] = Required("type"),
                ["spec.predictor.autoScaling.metrics[].type"] = Enum(MetricSourceType.All),
                ["spec.predictor.autoScaling.metrics[].resource"] = Required("name", "target"),
                ["spec.predictor.autoScaling.metrics[].resource.name"] = Enum(ResourceMetric.All),
                ["spec.predictor.autoScaling.metrics[].resource.target.type"] = Enum(MetricTargetType.All),
                ["spec.predictor.model"] = Required("modelFormat"),
                ["spec.predictor.model.modelFormat"] = Required("name"),
                ["spec.predictor.model.protocolVersion"] = Enum(ProtocolVersion.All),
                ["spec.predictor.name"] = Pattern("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
                ["status.modelStatus.transitionStatus"] = Enum(TransitionStatus.All),
                ["status.modelStatus.states.activeModelState"] = Enum(ModelState.All),
                ["status.modelStatus.states.targetModelState"] = Enum(ModelState.All),
            },
            $"{OptionalFolder}/serving.kserve.io_inferenceservices.yaml"),
    ];

    private static CrdDefinition Cache(Type type, string plural, string singular, string listKind, string scope, string shortName) => new(
        type,
        plural,
        singular,
        listKind,
        scope,
        [shortName],
        StatusSubresource: true,
        [
            new("Available", "integer", ".status.copies.available", Description: "Nodes that hold the model"),
            new("Total", "integer", ".status.copies.total", Description: "Nodes the model is placed on"),
            new("Failed", "integer", ".status.copies.failed", Description: "Nodes whose download failed"),
            ReadyCondition(),
            Age,
            new("NodeGroups", "string", ".spec.nodeGroups", 1),
            new("ModelSize", "string", ".spec.modelSize", 1),
            new("URI", "string", ".spec.sourceModelUri", 1),
        ],
        OpaqueBuiltins: false,
        new Dictionary<string, Action<JsonObject>>
        {
            ["spec"] = Required("modelSize", "nodeGroups", "sourceModelUri"),
            ["spec.sourceModelUri"] = Immutable("StorageUri is immutable"),
            ["spec.modelSize"] = NonNegativeQuantity,
            ["spec.nodeGroups"] = MinItems(1),
            ["status.nodeStatus{}"] = Enum(NodeStatus.All),
            ["status.copies.available"] = Minimum(0),
            ["status.copies.total"] = Minimum(0),
            ["status.copies.failed"] = Minimum(0),
            ["status.observedGeneration"] = Minimum(0),
            ["status.conditions"] = ListMapKeyedBy("type"),
            ["status.conditions[].status"] = Enum(ConditionStatus.All),
        },
        $"{LocalModelFolder}/serving.kserve.io_{plural}.yaml");

    private static Action<JsonObject> Required(params string[] names) =>
        s => s["required"] = new JsonArray([.. names.Select(n => (JsonNode)n)]);

    private static Action<JsonObject> Enum(IReadOnlyList<string> values) =>
        s => s["enum"] = new JsonArray([.. values.Select(v => (JsonNode)v)]);

    // Conditions are a map keyed by type, so server-side apply merges them per type.
    private static Action<JsonObject> ListMapKeyedBy(string key) => s =>
    {
        s["x-kubernetes-list-map-keys"] = new JsonArray(key);
        s["x-kubernetes-list-type"] = "map";
    };

    private static Action<JsonObject> MinItems(int n) => s => s["minItems"] = n;

    private static Action<JsonObject> Minimum(long n) => s => s["minimum"] = n;

    private static Action<JsonObject> Pattern(string pattern) => s => s["pattern"] = pattern;

    private static Action<JsonObject> Immutable(string message) =>
        s => s["x-kubernetes-validations"] = new JsonArray(new JsonObject { ["message"] = message, ["rule"] = "self == oldSelf" });

    // A pattern alone does not stop a negative integer (patterns apply to strings only), hence minimum too.
    private static void NonNegativeQuantity(JsonObject s)
    {
        s["pattern"] = SchemaPatterns.NonNegativeQuantity;
        s["minimum"] = 0;
    }
}
