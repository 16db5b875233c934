using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using KServe.Node.Api;
using KServe.Node.Api.V1Beta1;

namespace KServe.Node.CacheController.Controllers;

/// <summary>
/// An InferenceService seen through its metadata only: the controller needs its labels and annotations, so the
/// informer keeps nothing else in memory.
/// </summary>
[KubernetesEntity(Group = InferenceService.KubeGroup, ApiVersion = InferenceService.KubeVersion, Kind = InferenceService.KubeKind, PluralName = InferenceService.KubePluralName)]
internal sealed class InferenceServiceMetadata : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = InferenceService.KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = InferenceService.KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();
}

/// <summary>An LLMInferenceService (<c>serving.kserve.io/v1alpha2</c>) seen through its metadata only.</summary>
[KubernetesEntity(Group = "serving.kserve.io", ApiVersion = "v1alpha2", Kind = "LLMInferenceService", PluralName = "llminferenceservices")]
internal sealed class LlmInferenceServiceMetadata : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "serving.kserve.io/v1alpha2";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "LLMInferenceService";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();
}

/// <summary>Label and annotation keys this controller reads or writes (spec §4.2 and the contracts).</summary>
internal static class Keys
{
    public const string LocalModelLabel = KServeLabels.LocalModel;
    public const string LocalModelNamespaceLabel = KServeLabels.LocalModelNamespace;
    public const string NodeGroupAnnotation = KServeAnnotations.NodeGroup;
    public const string ClusterFinalizer = KServeFinalizers.LocalModelCache;
    public const string NamespaceFinalizer = KServeFinalizers.LocalModelNamespaceCache;

    /// <summary>Prefix of the placement labels on Nodes: <c>model.kserve-node.io/{storageKey}=true</c>.</summary>
    public const string PlacementLabelPrefix = PlacementLabels.Prefix;

    public static string PlacementLabel(string storageKey) => PlacementLabels.ForStorageKey(storageKey);
}
