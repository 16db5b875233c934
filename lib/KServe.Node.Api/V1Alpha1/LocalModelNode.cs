using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using KServe.Node.Api.Serialization;

namespace KServe.Node.Api.V1Alpha1;

/// <summary>
/// The models one node must hold; cluster-scoped, named after the node (spec §1.5). Only the
/// cache-controller writes the spec; only the node's agent writes the status.
/// </summary>
[KubernetesEntity(Group = KubeGroup, Kind = KubeKind, ApiVersion = KubeVersion, PluralName = KubePluralName)]
public sealed class LocalModelNode : IKubernetesObject<V1ObjectMeta>, ISpec<LocalModelNodeSpec>, IStatus<LocalModelNodeStatus?>
{
    public const string KubeApiVersion = KServeApi.V1Alpha1ApiVersion;
    public const string KubeKind = "LocalModelNode";
    public const string KubeGroup = KServeApi.Group;
    public const string KubeVersion = KServeApi.V1Alpha1;
    public const string KubePluralName = "localmodelnodes";
    public const string KubeSingularName = "localmodelnode";
    public const string KubeListKind = "LocalModelNodeList";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public LocalModelNodeSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    public LocalModelNodeStatus? Status { get; set; }

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

/// <summary>A list of <see cref="LocalModelNode"/>.</summary>
[KubernetesEntity(Group = LocalModelNode.KubeGroup, Kind = KubeKind, ApiVersion = LocalModelNode.KubeVersion, PluralName = LocalModelNode.KubePluralName)]
public sealed class LocalModelNodeList : IKubernetesObject<V1ListMeta>, IItems<LocalModelNode>
{
    public const string KubeKind = LocalModelNode.KubeListKind;

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = LocalModelNode.KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<LocalModelNode> Items { get; set; } = [];
}

/// <summary>Spec of <see cref="LocalModelNode"/>.</summary>
public sealed class LocalModelNodeSpec
{
    /// <summary>One entry per (cache, node group) reaching this node. Required; may be empty.</summary>
    [JsonPropertyName("localModels")]
    public IList<LocalModelInfo> LocalModels { get; set; } = [];

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>Validates the spec; paths start with <paramref name="path"/>.</summary>
    public IReadOnlyList<ValidationError> Validate(string path = "spec")
    {
        var v = new ValidationCollector();
        if (LocalModels is null)
        {
            v.Add($"{path}.localModels", "required");
            return v.Errors;
        }

        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < LocalModels.Count; i++)
        {
            var entry = LocalModels[i];
            var p = $"{path}.localModels[{i}]";
            if (entry is null)
            {
                v.Add(p, "must not be null");
                continue;
            }

            v.StorageUri($"{p}.sourceModelUri", entry.SourceModelUri, required: true);
            v.Required($"{p}.modelName", entry.ModelName);
            if (!string.IsNullOrEmpty(entry.ModelName) && !keys.Add(entry.StatusKey))
            {
                v.Add(p, $"duplicate entry for status key \"{entry.StatusKey}\" (modelName and namespace must be unique)");
            }
        }

        return v.Errors;
    }
}

/// <summary>One model a node must hold (spec §1.5 <c>LocalModelInfo</c>). Identified by (modelName, namespace).</summary>
public sealed class LocalModelInfo
{
    /// <summary>Copied from the cache. Required.</summary>
    [JsonPropertyName("sourceModelUri")]
    public string SourceModelUri { get; set; } = "";

    /// <summary>The cache's <c>metadata.name</c>. Required.</summary>
    [JsonPropertyName("modelName")]
    public string ModelName { get; set; } = "";

    /// <summary>Empty for a cluster cache; the cache namespace for a namespace cache.</summary>
    [JsonPropertyName("namespace")]
    public string? Namespace { get; set; }

    /// <summary>The group through which this node got the model (names the download PVC).</summary>
    [JsonPropertyName("nodeGroup")]
    public string? NodeGroup { get; set; }

    /// <summary>Copied from the cache.</summary>
    [JsonPropertyName("serviceAccountName")]
    public string? ServiceAccountName { get; set; }

    /// <summary>Copied from the cache.</summary>
    [JsonPropertyName("storage")]
    public LocalModelStorageSpec? Storage { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>
    /// The entry the controller writes for a cache on a node reached through <paramref name="nodeGroup"/>
    /// (spec §2.3 step 6.1): URI, service account and storage copied from the cache; namespace empty for a
    /// cluster cache.
    /// </summary>
    public static LocalModelInfo ForCache(string cacheName, string? cacheNamespace, LocalModelCacheSpec spec, string nodeGroup)
    {
        ArgumentException.ThrowIfNullOrEmpty(cacheName);
        ArgumentNullException.ThrowIfNull(spec);
        return new LocalModelInfo
        {
            SourceModelUri = spec.SourceModelUri,
            ModelName = cacheName,
            Namespace = string.IsNullOrEmpty(cacheNamespace) ? null : cacheNamespace,
            NodeGroup = nodeGroup,
            ServiceAccountName = spec.ServiceAccountName,
            Storage = spec.Storage is null ? null : Serialization.ApiSerializer.Clone(spec.Storage),
        };
    }

    /// <summary>True when this entry has the identity (modelName, namespace) of <paramref name="other"/>.</summary>
    public bool SameIdentity(LocalModelInfo other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return ModelName == other.ModelName && (Namespace ?? "") == (other.Namespace ?? "");
    }

    /// <summary>
    /// True when the controller would replace this entry with <paramref name="desired"/>: any of
    /// sourceModelUri, serviceAccountName, nodeGroup or storage differs (spec §2.3).
    /// </summary>
    public bool DiffersFrom(LocalModelInfo desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        return SourceModelUri != desired.SourceModelUri
            || (ServiceAccountName ?? "") != (desired.ServiceAccountName ?? "")
            || (NodeGroup ?? "") != (desired.NodeGroup ?? "")
            || !Serialization.ApiSerializer.JsonEquals(Storage, desired.Storage);
    }

    /// <summary>The key of this entry in <c>status.modelStatus</c>: <c>modelName</c> or <c>{namespace}/{modelName}</c>.</summary>
    [JsonIgnore]
    public string StatusKey => Api.StatusKey.For(ModelName, Namespace);

    /// <summary>The storage key of <see cref="SourceModelUri"/> (the folder name on disk).</summary>
    [JsonIgnore]
    public string StorageKey => Api.StorageKey.Compute(SourceModelUri);
}

/// <summary>Status of <see cref="LocalModelNode"/>: KServe's <c>modelStatus</c> plus this project's additions.</summary>
public sealed class LocalModelNodeStatus
{
    /// <summary>One key per spec entry (status key → <see cref="V1Alpha1.ModelStatus"/> value).</summary>
    [JsonPropertyName("modelStatus")]
    public IDictionary<string, string>? ModelStatus { get; set; }

    /// <summary>Addition: download progress per status key.</summary>
    [JsonPropertyName("modelProgress")]
    public IDictionary<string, ModelProgress>? ModelProgress { get; set; }

    /// <summary>Addition: the node's cache disk.</summary>
    [JsonPropertyName("storage")]
    public LocalModelNodeStorageStatus? Storage { get; set; }

    /// <summary>Addition: conditions of the node's agent.</summary>
    [JsonPropertyName("conditions")]
    public IList<V1Condition>? Conditions { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>Validates enum values and counters.</summary>
    public IReadOnlyList<ValidationError> Validate(string path = "status")
    {
        var v = new ValidationCollector();
        if (ModelStatus is not null)
        {
            foreach (var (key, value) in ModelStatus)
            {
                v.OneOf($"{path}.modelStatus[{key}]", value, V1Alpha1.ModelStatus.All);
            }
        }

        if (ModelProgress is not null)
        {
            foreach (var (key, progress) in ModelProgress)
            {
                if (progress is null)
                {
                    continue;
                }

                v.NonNegative($"{path}.modelProgress[{key}].bytesDone", progress.BytesDone);
                v.NonNegative($"{path}.modelProgress[{key}].bytesTotal", progress.BytesTotal);
            }
        }

        if (Storage is not null)
        {
            v.NonNegativeQuantity($"{path}.storage.capacity", Storage.Capacity, required: false);
            v.NonNegativeQuantity($"{path}.storage.used", Storage.Used, required: false);
        }

        ConditionValidation.Validate(v, $"{path}.conditions", Conditions);
        return v.Errors;
    }
}

/// <summary>Addition: progress of one model's download on a node.</summary>
public sealed class ModelProgress
{
    [JsonPropertyName("bytesDone")]
    public long? BytesDone { get; set; }

    /// <summary>Total bytes when known.</summary>
    [JsonPropertyName("bytesTotal")]
    public long? BytesTotal { get; set; }

    /// <summary>A one-line human message (e.g. the failure reason); never contains secrets.</summary>
    [JsonPropertyName("message")]
    public string? Message { get; set; }

    [JsonPropertyName("updatedAt")]
    public DateTime? UpdatedAt { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Addition: the node's cache disk.</summary>
public sealed class LocalModelNodeStorageStatus
{
    [JsonPropertyName("capacity")]
    [JsonConverter(typeof(QuantityConverter))]
    public ResourceQuantity? Capacity { get; set; }

    [JsonPropertyName("used")]
    [JsonConverter(typeof(QuantityConverter))]
    public ResourceQuantity? Used { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}
