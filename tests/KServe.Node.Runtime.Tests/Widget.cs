using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace KServe.Node.Runtime.Tests;

/// <summary>A test-only custom resource (crds/widgets.yaml): the runtime must serve CRD kinds like built-in ones.</summary>
[KubernetesEntity(Group = "test.kserve-node.io", ApiVersion = "v1", Kind = "Widget", PluralName = "widgets")]
public sealed class Widget : IKubernetesObject<V1ObjectMeta>, ISpec<WidgetSpec>, IStatus<WidgetStatus?>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "test.kserve-node.io/v1";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "Widget";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public WidgetSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    public WidgetStatus? Status { get; set; }
}

public sealed class WidgetSpec
{
    [JsonPropertyName("size")]
    public int Size { get; set; }
}

public sealed class WidgetStatus
{
    [JsonPropertyName("observedSize")]
    public int ObservedSize { get; set; }

    [JsonPropertyName("phase")]
    public string? Phase { get; set; }
}
