using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using KServe.Node.Api.Serialization;

namespace KServe.Node.Api.V1Alpha1;

/// <summary>
/// A set of nodes (selected by the PV template's <c>nodeAffinity.required</c>) plus the PV and PVC
/// templates for the models cached on them; cluster-scoped, no status subresource (spec §1.4).
/// </summary>
[KubernetesEntity(Group = KubeGroup, Kind = KubeKind, ApiVersion = KubeVersion, PluralName = KubePluralName)]
public sealed class LocalModelNodeGroup : IKubernetesObject<V1ObjectMeta>, ISpec<LocalModelNodeGroupSpec>, IStatus<LocalModelNodeGroupStatus?>
{
    public const string KubeApiVersion = KServeApi.V1Alpha1ApiVersion;
    public const string KubeKind = "LocalModelNodeGroup";
    public const string KubeGroup = KServeApi.Group;
    public const string KubeVersion = KServeApi.V1Alpha1;
    public const string KubePluralName = "localmodelnodegroups";
    public const string KubeSingularName = "localmodelnodegroup";
    public const string KubeListKind = "LocalModelNodeGroupList";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public LocalModelNodeGroupSpec Spec { get; set; } = new();

    /// <summary>Written by the cache-controller through the main resource (KServe's CRD has no status subresource here).</summary>
    [JsonPropertyName("status")]
    public LocalModelNodeGroupStatus? Status { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>
    /// True when <paramref name="node"/> is a member of this group: its PV template's
    /// <c>nodeAffinity.required</c> selects it. No affinity or no required term matches no node (spec §1.4).
    /// </summary>
    public bool Selects(V1Node node) =>
        NodeSelectorMatcher.Matches(Spec?.PersistentVolumeSpec, node);

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

/// <summary>A list of <see cref="LocalModelNodeGroup"/>.</summary>
[KubernetesEntity(Group = LocalModelNodeGroup.KubeGroup, Kind = KubeKind, ApiVersion = LocalModelNodeGroup.KubeVersion, PluralName = LocalModelNodeGroup.KubePluralName)]
public sealed class LocalModelNodeGroupList : IKubernetesObject<V1ListMeta>, IItems<LocalModelNodeGroup>
{
    public const string KubeKind = LocalModelNodeGroup.KubeListKind;

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = LocalModelNodeGroup.KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<LocalModelNodeGroup> Items { get; set; } = [];
}

/// <summary>Spec of <see cref="LocalModelNodeGroup"/>; all three fields are required.</summary>
public sealed class LocalModelNodeGroupSpec
{
    /// <summary>Maximum cache size per node. Enforced by this project (logically by the cache-controller).</summary>
    [JsonPropertyName("storageLimit")]
    [JsonConverter(typeof(QuantityConverter))]
    public ResourceQuantity? StorageLimit { get; set; }

    /// <summary>Template of every PV created for this group; its <c>nodeAffinity.required</c> selects the member nodes.</summary>
    [JsonPropertyName("persistentVolumeSpec")]
    public V1PersistentVolumeSpec? PersistentVolumeSpec { get; set; }

    /// <summary>Template of every PVC; <c>volumeName</c> is overwritten with the PV created for it.</summary>
    [JsonPropertyName("persistentVolumeClaimSpec")]
    public V1PersistentVolumeClaimSpec? PersistentVolumeClaimSpec { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>Validates the spec; paths start with <paramref name="path"/>.</summary>
    public IReadOnlyList<ValidationError> Validate(string path = "spec")
    {
        var v = new ValidationCollector();
        v.NonNegativeQuantity($"{path}.storageLimit", StorageLimit, required: true);
        if (PersistentVolumeSpec is null)
        {
            v.Add($"{path}.persistentVolumeSpec", "required");
        }

        if (PersistentVolumeClaimSpec is null)
        {
            v.Add($"{path}.persistentVolumeClaimSpec", "required");
        }

        return v.Errors;
    }
}

/// <summary>Status of a node group: declared by KServe, written by this project's cache-controller
/// (logical: the sum of <c>modelSize</c> placed on its nodes).</summary>
public sealed class LocalModelNodeGroupStatus
{
    [JsonPropertyName("used")]
    [JsonConverter(typeof(QuantityConverter))]
    public ResourceQuantity? Used { get; set; }

    [JsonPropertyName("available")]
    [JsonConverter(typeof(QuantityConverter))]
    public ResourceQuantity? Available { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>Validates the status; paths start with <paramref name="path"/>.</summary>
    public IReadOnlyList<ValidationError> Validate(string path = "status")
    {
        var v = new ValidationCollector();
        v.NonNegativeQuantity($"{path}.used", Used, required: false);
        return v.Errors;
    }
}
