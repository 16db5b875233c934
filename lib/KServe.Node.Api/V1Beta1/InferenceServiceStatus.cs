using System.Text.Json;
using System.Text.Json.Serialization;

namespace KServe.Node.Api.V1Beta1;

/// <summary>InferenceService status (Knative duck status inlined, plus KServe's fields; spec §9.2).</summary>
public sealed class InferenceServiceStatus
{
    [JsonPropertyName("observedGeneration")]
    public long? ObservedGeneration { get; set; }

    /// <summary>PredictorReady, IngressReady, Ready (<see cref="InferenceServiceConditions"/>).</summary>
    [JsonPropertyName("conditions")]
    public IList<InferenceServiceCondition>? Conditions { get; set; }

    [JsonPropertyName("annotations")]
    public IDictionary<string, string>? Annotations { get; set; }

    /// <summary><c>http://{isvc}-{ns}.{domain}</c>.</summary>
    [JsonPropertyName("url")]
    public string? Url { get; set; }

    /// <summary>The cluster-local address.</summary>
    [JsonPropertyName("address")]
    public Addressable? Address { get; set; }

    /// <summary>Per component (<c>predictor</c>, …).</summary>
    [JsonPropertyName("components")]
    public IDictionary<string, ComponentStatusSpec>? Components { get; set; }

    [JsonPropertyName("modelStatus")]
    public InferenceServiceModelStatus? ModelStatus { get; set; }

    [JsonPropertyName("deploymentMode")]
    public string? DeploymentMode { get; set; }

    [JsonPropertyName("servingRuntimeName")]
    public string? ServingRuntimeName { get; set; }

    [JsonPropertyName("clusterServingRuntimeName")]
    public string? ClusterServingRuntimeName { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>A Knative-style condition (it has <c>severity</c>, unlike metav1.Condition).</summary>
public sealed class InferenceServiceCondition
{
    [JsonPropertyName("type")]
    public string Type { get; set; } = "";

    /// <summary>True, False or Unknown.</summary>
    [JsonPropertyName("status")]
    public string Status { get; set; } = "";

    /// <summary>Empty (error), Warning or Info.</summary>
    [JsonPropertyName("severity")]
    public string? Severity { get; set; }

    [JsonPropertyName("lastTransitionTime")]
    public DateTime? LastTransitionTime { get; set; }

    [JsonPropertyName("reason")]
    public string? Reason { get; set; }

    [JsonPropertyName("message")]
    public string? Message { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Knative Addressable.</summary>
public sealed class Addressable
{
    [JsonPropertyName("url")]
    public string? Url { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Status of one component; Knative <c>traffic</c> is kept as extension data.</summary>
public sealed class ComponentStatusSpec
{
    [JsonPropertyName("latestReadyRevision")]
    public string? LatestReadyRevision { get; set; }

    [JsonPropertyName("latestCreatedRevision")]
    public string? LatestCreatedRevision { get; set; }

    [JsonPropertyName("previousRolledoutRevision")]
    public string? PreviousRolledoutRevision { get; set; }

    [JsonPropertyName("latestRolledoutRevision")]
    public string? LatestRolledoutRevision { get; set; }

    [JsonPropertyName("url")]
    public string? Url { get; set; }

    [JsonPropertyName("restUrl")]
    public string? RestUrl { get; set; }

    [JsonPropertyName("grpcUrl")]
    public string? GrpcUrl { get; set; }

    [JsonPropertyName("address")]
    public Addressable? Address { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary><c>status.modelStatus</c>; <c>lastFailureInfo</c> and <c>copies</c> are kept as extension data.</summary>
public sealed class InferenceServiceModelStatus
{
    /// <summary><see cref="V1Beta1.TransitionStatus"/> value.</summary>
    [JsonPropertyName("transitionStatus")]
    public string? TransitionStatus { get; set; }

    [JsonPropertyName("states")]
    public ModelRevisionStates? States { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Model revision states (<see cref="ModelState"/> values).</summary>
public sealed class ModelRevisionStates
{
    [JsonPropertyName("activeModelState")]
    public string? ActiveModelState { get; set; }

    [JsonPropertyName("targetModelState")]
    public string? TargetModelState { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}
