using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using KServe.Node.Api.Serialization;

namespace KServe.Node.Api.V1Alpha1;

/// <summary>A model cached on the nodes of one or more node groups; cluster-scoped (spec §1.2).</summary>
[KubernetesEntity(Group = KubeGroup, Kind = KubeKind, ApiVersion = KubeVersion, PluralName = KubePluralName)]
public sealed class LocalModelCache : IKubernetesObject<V1ObjectMeta>, ISpec<LocalModelCacheSpec>, IStatus<LocalModelCacheStatus?>
{
    public const string KubeApiVersion = KServeApi.V1Alpha1ApiVersion;
    public const string KubeKind = "LocalModelCache";
    public const string KubeGroup = KServeApi.Group;
    public const string KubeVersion = KServeApi.V1Alpha1;
    public const string KubePluralName = "localmodelcaches";
    public const string KubeSingularName = "localmodelcache";
    public const string KubeListKind = "LocalModelCacheList";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public LocalModelCacheSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    public LocalModelCacheStatus? Status { get; set; }

    /// <summary>Fields this type does not know; kept so that a round trip loses nothing.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>Validates spec and status; every error names its JSON path.</summary>
    public IReadOnlyList<ValidationError> Validate()
    {
        var errors = new List<ValidationError>(Spec?.Validate("spec") ?? [new ValidationError("spec", "required")]);
        if (Status is not null)
        {
            errors.AddRange(Status.Validate("status"));
        }

        return errors;
    }
}

/// <summary>A list of <see cref="LocalModelCache"/>.</summary>
[KubernetesEntity(Group = LocalModelCache.KubeGroup, Kind = KubeKind, ApiVersion = LocalModelCache.KubeVersion, PluralName = LocalModelCache.KubePluralName)]
public sealed class LocalModelCacheList : IKubernetesObject<V1ListMeta>, IItems<LocalModelCache>
{
    public const string KubeKind = LocalModelCache.KubeListKind;

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = LocalModelCache.KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<LocalModelCache> Items { get; set; } = [];
}

/// <summary>
/// Spec of <see cref="LocalModelCache"/> and <see cref="LocalModelNamespaceCache"/> (spec §1.2, §1.3).
/// </summary>
public sealed class LocalModelCacheSpec
{
    /// <summary>The model source URI. Required; immutable (CEL <c>self == oldSelf</c>).</summary>
    [JsonPropertyName("sourceModelUri")]
    public string SourceModelUri { get; set; } = "";

    /// <summary>Size of the model. Required; must not be negative.</summary>
    [JsonPropertyName("modelSize")]
    [JsonConverter(typeof(QuantityConverter))]
    public ResourceQuantity? ModelSize { get; set; }

    /// <summary>Names of LocalModelNodeGroups; at least one. The first is the default group.</summary>
    [JsonPropertyName("nodeGroups")]
    public IList<string> NodeGroups { get; set; } = [];

    /// <summary>A ServiceAccount in the job namespace whose secrets supply download credentials.</summary>
    [JsonPropertyName("serviceAccountName")]
    public string? ServiceAccountName { get; set; }

    /// <summary>Storage-spec credentials.</summary>
    [JsonPropertyName("storage")]
    public LocalModelStorageSpec? Storage { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>The default node group (<c>nodeGroups[0]</c>), or null when there is none.</summary>
    [JsonIgnore]
    public string? DefaultNodeGroup => NodeGroups is { Count: > 0 } ? NodeGroups[0] : null;

    /// <summary>Validates the spec; paths start with <paramref name="path"/>.</summary>
    public IReadOnlyList<ValidationError> Validate(string path = "spec")
    {
        var v = new ValidationCollector();
        v.StorageUri($"{path}.sourceModelUri", SourceModelUri, required: true);
        v.NonNegativeQuantity($"{path}.modelSize", ModelSize, required: true);
        if (NodeGroups is null || NodeGroups.Count == 0)
        {
            v.Add($"{path}.nodeGroups", "must contain at least one node group");
        }
        else
        {
            for (var i = 0; i < NodeGroups.Count; i++)
            {
                if (string.IsNullOrEmpty(NodeGroups[i]))
                {
                    v.Add($"{path}.nodeGroups[{i}]", "must not be empty");
                }
            }
        }

        return v.Errors;
    }
}

/// <summary>Storage-spec credentials of a cache (spec §1.2 <c>LocalModelStorageSpec</c>).</summary>
public sealed class LocalModelStorageSpec
{
    /// <summary>Data key inside the storage-spec secret (<c>storage-config</c> by default).</summary>
    [JsonPropertyName("key")]
    public string? Key { get; set; }

    /// <summary>Override parameters, passed as JSON in <c>STORAGE_OVERRIDE_CONFIG</c>.</summary>
    [JsonPropertyName("parameters")]
    public IDictionary<string, string>? Parameters { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Status of a cache (spec §1.2) plus this project's <c>conditions</c> and <c>observedGeneration</c>.</summary>
public sealed class LocalModelCacheStatus
{
    /// <summary>Per-node state of the model; values from <see cref="V1Alpha1.NodeStatus"/>.</summary>
    [JsonPropertyName("nodeStatus")]
    public IDictionary<string, string>? NodeStatus { get; set; }

    /// <summary>Counters over <see cref="NodeStatus"/>.</summary>
    [JsonPropertyName("copies")]
    public ModelCopies? Copies { get; set; }

    /// <summary>InferenceServices that carry the localmodel label for this cache.</summary>
    [JsonPropertyName("inferenceServices")]
    public IList<NamespacedName>? InferenceServices { get; set; }

    /// <summary>LLMInferenceServices that carry the localmodel label for this cache.</summary>
    [JsonPropertyName("llmInferenceServices")]
    public IList<NamespacedName>? LlmInferenceServices { get; set; }

    /// <summary>Addition: Ready, Degraded, StorageLimitExceeded (<see cref="LocalModelCacheConditions"/>).</summary>
    [JsonPropertyName("conditions")]
    public IList<V1Condition>? Conditions { get; set; }

    /// <summary>Addition: the <c>metadata.generation</c> this status was computed from.</summary>
    [JsonPropertyName("observedGeneration")]
    public long? ObservedGeneration { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>Validates enum values and counters.</summary>
    public IReadOnlyList<ValidationError> Validate(string path = "status")
    {
        var v = new ValidationCollector();
        if (NodeStatus is not null)
        {
            foreach (var (node, value) in NodeStatus)
            {
                v.OneOf($"{path}.nodeStatus[{node}]", value, V1Alpha1.NodeStatus.All);
            }
        }

        if (Copies is not null)
        {
            v.NonNegative($"{path}.copies.available", Copies.Available);
            v.NonNegative($"{path}.copies.total", Copies.Total);
            v.NonNegative($"{path}.copies.failed", Copies.Failed);
        }

        v.NonNegative($"{path}.observedGeneration", ObservedGeneration);
        ConditionValidation.Validate(v, $"{path}.conditions", Conditions);
        return v.Errors;
    }
}

/// <summary>Counters over a cache's <c>nodeStatus</c> map. KServe omits zero values.</summary>
public sealed class ModelCopies
{
    /// <summary>Entries equal to <c>NodeDownloaded</c>.</summary>
    [JsonPropertyName("available")]
    public int? Available { get; set; }

    /// <summary>All entries, including <c>NodeNotReady</c>.</summary>
    [JsonPropertyName("total")]
    public int? Total { get; set; }

    /// <summary>Entries equal to <c>NodeDownloadError</c>.</summary>
    [JsonPropertyName("failed")]
    public int? Failed { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>Computes the counters over a <c>nodeStatus</c> map as KServe does (spec §1.2).</summary>
    public static ModelCopies FromNodeStatus(IDictionary<string, string>? nodeStatus)
    {
        if (nodeStatus is null || nodeStatus.Count == 0)
        {
            return new ModelCopies();
        }

        static int? NonZero(int n) => n == 0 ? null : n;
        return new ModelCopies
        {
            Total = NonZero(nodeStatus.Count),
            Available = NonZero(nodeStatus.Values.Count(s => s == V1Alpha1.NodeStatus.NodeDownloaded)),
            Failed = NonZero(nodeStatus.Values.Count(s => s == V1Alpha1.NodeStatus.NodeDownloadError)),
        };
    }
}

/// <summary>KServe's NamespacedName: <c>{namespace, name}</c>, both optional.</summary>
public sealed class NamespacedName
{
    [JsonPropertyName("namespace")]
    public string? Namespace { get; set; }

    [JsonPropertyName("name")]
    public string? Name { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

internal static class ConditionValidation
{
    public static void Validate(ValidationCollector v, string path, IList<V1Condition>? conditions)
    {
        if (conditions is null)
        {
            return;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < conditions.Count; i++)
        {
            var c = conditions[i];
            if (c is null)
            {
                v.Add($"{path}[{i}]", "must not be null");
                continue;
            }

            v.Required($"{path}[{i}].type", c.Type);
            if (!string.IsNullOrEmpty(c.Type) && !seen.Add(c.Type))
            {
                v.Add($"{path}[{i}].type", $"duplicate condition type \"{c.Type}\"");
            }

            v.Required($"{path}[{i}].status", c.Status);
            v.OneOf($"{path}[{i}].status", c.Status, ConditionStatus.All);
        }
    }
}
