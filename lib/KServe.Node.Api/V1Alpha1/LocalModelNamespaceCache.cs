using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace KServe.Node.Api.V1Alpha1;

/// <summary>
/// A model cache usable only by InferenceServices in its own namespace; it takes precedence over a
/// cluster cache with a matching URI (spec §1.3). Spec and status are those of <see cref="LocalModelCache"/>.
/// </summary>
[KubernetesEntity(Group = KubeGroup, Kind = KubeKind, ApiVersion = KubeVersion, PluralName = KubePluralName)]
public sealed class LocalModelNamespaceCache : IKubernetesObject<V1ObjectMeta>, ISpec<LocalModelCacheSpec>, IStatus<LocalModelCacheStatus?>
{
    public const string KubeApiVersion = KServeApi.V1Alpha1ApiVersion;
    public const string KubeKind = "LocalModelNamespaceCache";
    public const string KubeGroup = KServeApi.Group;
    public const string KubeVersion = KServeApi.V1Alpha1;
    public const string KubePluralName = "localmodelnamespacecaches";
    public const string KubeSingularName = "localmodelnamespacecache";
    public const string KubeListKind = "LocalModelNamespaceCacheList";

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

/// <summary>A list of <see cref="LocalModelNamespaceCache"/>.</summary>
[KubernetesEntity(Group = LocalModelNamespaceCache.KubeGroup, Kind = KubeKind, ApiVersion = LocalModelNamespaceCache.KubeVersion, PluralName = LocalModelNamespaceCache.KubePluralName)]
public sealed class LocalModelNamespaceCacheList : IKubernetesObject<V1ListMeta>, IItems<LocalModelNamespaceCache>
{
    public const string KubeKind = LocalModelNamespaceCache.KubeListKind;

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = LocalModelNamespaceCache.KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<LocalModelNamespaceCache> Items { get; set; } = [];
}
