using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using KServe.Node.Api.Serialization;

namespace KServe.Node.Api.V1Beta1;

/// <summary>
/// KServe's InferenceService, typed for the LLM subset of spec §9. Everything outside the subset
/// (transformer, explainer, logger, batcher, framework shortcuts, more pod fields…) is kept in the
/// <c>ExtensionData</c> of the enclosing object, so nothing a user wrote is lost on a round trip.
/// </summary>
[KubernetesEntity(Group = KubeGroup, Kind = KubeKind, ApiVersion = KubeVersion, PluralName = KubePluralName)]
public sealed class InferenceService : IKubernetesObject<V1ObjectMeta>, ISpec<InferenceServiceSpec>, IStatus<InferenceServiceStatus?>
{
    public const string KubeApiVersion = KServeApi.V1Beta1ApiVersion;
    public const string KubeKind = "InferenceService";
    public const string KubeGroup = KServeApi.Group;
    public const string KubeVersion = KServeApi.V1Beta1;
    public const string KubePluralName = "inferenceservices";
    public const string KubeSingularName = "inferenceservice";
    public const string KubeListKind = "InferenceServiceList";
    public const string KubeShortName = "isvc";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public InferenceServiceSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    public InferenceServiceStatus? Status { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>Validates the subset this project acts on; every error names its JSON path.</summary>
    public IReadOnlyList<ValidationError> Validate()
    {
        var v = new ValidationCollector();
        var annotations = Metadata?.Annotations;
        if (annotations is not null)
        {
            if (annotations.TryGetValue(KServeAnnotations.DeploymentMode, out var mode))
            {
                v.OneOf($"metadata.annotations[{KServeAnnotations.DeploymentMode}]", mode, DeploymentMode.All);
            }

            if (annotations.TryGetValue(KServeAnnotations.AutoscalerClass, out var autoscaler))
            {
                v.OneOf($"metadata.annotations[{KServeAnnotations.AutoscalerClass}]", autoscaler, AutoscalerClass.All);
            }
        }

        var errors = new List<ValidationError>(v.Errors);
        errors.AddRange(Spec?.Validate("spec") ?? [new ValidationError("spec", "required")]);
        return errors;
    }
}

/// <summary>A list of <see cref="InferenceService"/>.</summary>
[KubernetesEntity(Group = InferenceService.KubeGroup, Kind = KubeKind, ApiVersion = InferenceService.KubeVersion, PluralName = InferenceService.KubePluralName)]
public sealed class InferenceServiceList : IKubernetesObject<V1ListMeta>, IItems<InferenceService>
{
    public const string KubeKind = InferenceService.KubeListKind;

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = InferenceService.KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<InferenceService> Items { get; set; } = [];
}

/// <summary>InferenceService spec: the predictor; <c>transformer</c>, <c>explainer</c> and the rest stay in <see cref="ExtensionData"/>.</summary>
public sealed class InferenceServiceSpec
{
    [JsonPropertyName("predictor")]
    public PredictorSpec? Predictor { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    public IReadOnlyList<ValidationError> Validate(string path = "spec")
    {
        if (Predictor is null)
        {
            return [new ValidationError($"{path}.predictor", "required")];
        }

        return Predictor.Validate($"{path}.predictor");
    }
}

/// <summary>
/// The predictor: KServe inlines a PodSpec and the component extension spec here. The typed fields are the
/// §9.1 subset; other pod fields and component fields (logger, batcher, containerConcurrency,
/// canaryTrafficPercent, framework shortcuts such as <c>sklearn</c>) are in <see cref="ExtensionData"/>.
/// </summary>
public sealed partial class PredictorSpec
{
    /// <summary>Model spec for any framework; the one this project serves.</summary>
    [JsonPropertyName("model")]
    public ModelSpec? Model { get; set; }

    /// <summary>Default <see cref="InferenceServiceDefaults.MinReplicas"/>; at least 0.</summary>
    [JsonPropertyName("minReplicas")]
    public int? MinReplicas { get; set; }

    /// <summary>Must be at least <see cref="MinReplicas"/> unless 0/unset.</summary>
    [JsonPropertyName("maxReplicas")]
    public int? MaxReplicas { get; set; }

    /// <summary>HPA average utilisation target in percent.</summary>
    [JsonPropertyName("scaleTarget")]
    public int? ScaleTarget { get; set; }

    /// <summary><see cref="V1Beta1.ScaleMetric"/> value.</summary>
    [JsonPropertyName("scaleMetric")]
    public string? ScaleMetric { get; set; }

    /// <summary><see cref="V1Beta1.MetricTargetType"/> value.</summary>
    [JsonPropertyName("scaleMetricType")]
    public string? ScaleMetricType { get; set; }

    /// <summary>Overrides scaleMetric/scaleTarget for the HPA.</summary>
    [JsonPropertyName("autoScaling")]
    public AutoScalingSpec? AutoScaling { get; set; }

    /// <summary>Request timeout in seconds (default <see cref="InferenceServiceDefaults.TimeoutSeconds"/>).</summary>
    [JsonPropertyName("timeout")]
    public long? Timeout { get; set; }

    /// <summary>Labels added to the component metadata and the pod.</summary>
    [JsonPropertyName("labels")]
    public IDictionary<string, string>? Labels { get; set; }

    /// <summary>Annotations added to the component metadata and the pod.</summary>
    [JsonPropertyName("annotations")]
    public IDictionary<string, string>? Annotations { get; set; }

    /// <summary>Raw mode only.</summary>
    [JsonPropertyName("deploymentStrategy")]
    public V1DeploymentStrategy? DeploymentStrategy { get; set; }

    /// <summary>Optional variant name: resources become <c>{isvc}-{name}-predictor</c>.</summary>
    [JsonPropertyName("name")]
    public string? Name { get; set; }

    [JsonPropertyName("nodeSelector")]
    public IDictionary<string, string>? NodeSelector { get; set; }

    [JsonPropertyName("tolerations")]
    public IList<V1Toleration>? Tolerations { get; set; }

    [JsonPropertyName("affinity")]
    public V1Affinity? Affinity { get; set; }

    [JsonPropertyName("serviceAccountName")]
    public string? ServiceAccountName { get; set; }

    [JsonPropertyName("volumes")]
    public IList<V1Volume>? Volumes { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary><see cref="MinReplicas"/> with KServe's default applied.</summary>
    [JsonIgnore]
    public int EffectiveMinReplicas => MinReplicas ?? InferenceServiceDefaults.MinReplicas;

    /// <summary><see cref="Timeout"/> with KServe's default applied.</summary>
    [JsonIgnore]
    public long EffectiveTimeoutSeconds => Timeout ?? InferenceServiceDefaults.TimeoutSeconds;

    // JSON fields of the predictor that are not PodSpec fields: KServe's ComponentExtensionSpec and the
    // predictor implementations. Everything else inlined here belongs to the pod.
    private static readonly HashSet<string> NonPodFields = new(StringComparer.Ordinal)
    {
        "model", "workerSpec", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface",
        "pmml", "lightgbm", "paddle", "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric",
        "scaleMetricType", "autoScaling", "containerConcurrency", "timeout", "canaryTrafficPercent", "logger",
        "batcher", "labels", "annotations", "deploymentStrategy", "name", "storageUris",
    };

    /// <summary>
    /// The pod fields written inline in the predictor (typed ones and those kept as extension data, e.g.
    /// <c>imagePullSecrets</c>, <c>priorityClassName</c>, <c>containers</c>) as a <see cref="V1PodSpec"/>.
    /// </summary>
    public V1PodSpec GetPodSpec()
    {
        var node = JsonNode.Parse(KubernetesJson.Serialize(this))!.AsObject();
        foreach (var field in NonPodFields)
        {
            node.Remove(field);
        }

        return KubernetesJson.Deserialize<V1PodSpec>(node.ToJsonString());
    }

    public IReadOnlyList<ValidationError> Validate(string path = "spec.predictor")
    {
        var v = new ValidationCollector();
        if (MinReplicas < 0)
        {
            v.Add($"{path}.minReplicas", "must not be negative");
        }

        if (MaxReplicas < 0)
        {
            v.Add($"{path}.maxReplicas", "must not be negative");
        }

        if (MaxReplicas is > 0 && EffectiveMinReplicas > MaxReplicas)
        {
            v.Add($"{path}.minReplicas", $"must not be greater than maxReplicas ({MaxReplicas})");
        }

        if (ScaleTarget < 0)
        {
            v.Add($"{path}.scaleTarget", "must not be negative");
        }

        v.OneOf($"{path}.scaleMetric", ScaleMetric, V1Beta1.ScaleMetric.All);
        v.OneOf($"{path}.scaleMetricType", ScaleMetricType, MetricTargetType.All);
        v.NonNegative($"{path}.timeout", Timeout);
        if (Name is not null && !DnsLabel().IsMatch(Name))
        {
            v.Add($"{path}.name", "must be a DNS label (lower-case alphanumerics and '-', starting and ending with an alphanumeric)");
        }

        if (AutoScaling?.Metrics is { } metrics)
        {
            for (var i = 0; i < metrics.Count; i++)
            {
                var m = metrics[i];
                var p = $"{path}.autoScaling.metrics[{i}]";
                if (m is null)
                {
                    v.Add(p, "must not be null");
                    continue;
                }

                v.Required($"{p}.type", m.Type);
                v.OneOf($"{p}.type", m.Type, MetricSourceType.All);
                if (m.Resource is { } r)
                {
                    v.Required($"{p}.resource.name", r.Name);
                    v.OneOf($"{p}.resource.name", r.Name, ResourceMetric.All);
                    v.OneOf($"{p}.resource.target.type", r.Target?.Type, MetricTargetType.All);
                }
                else if (m.Type == MetricSourceType.Resource)
                {
                    v.Add($"{p}.resource", "required when type is Resource");
                }
            }
        }

        if (Model is not null)
        {
            Model.Validate(v, $"{path}.model");
        }

        return v.Errors;
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", RegexOptions.CultureInvariant)]
    private static partial Regex DnsLabel();
}

/// <summary>
/// <c>spec.predictor.model</c>: model format, runtime and storage URI, with a core Container inlined
/// (typed: image, command, args, env, resources, ports, volumeMounts; the rest in <see cref="ExtensionData"/>).
/// </summary>
public sealed class ModelSpec
{
    /// <summary>Required; selects the runtime.</summary>
    [JsonPropertyName("modelFormat")]
    public ModelFormat? ModelFormat { get; set; }

    /// <summary>Explicit ServingRuntime or ClusterServingRuntime name.</summary>
    [JsonPropertyName("runtime")]
    public string? Runtime { get; set; }

    /// <summary>The model source; matched against caches.</summary>
    [JsonPropertyName("storageUri")]
    public string? StorageUri { get; set; }

    /// <summary><see cref="V1Beta1.ProtocolVersion"/> value.</summary>
    [JsonPropertyName("protocolVersion")]
    public string? ProtocolVersion { get; set; }

    [JsonPropertyName("image")]
    public string? Image { get; set; }

    [JsonPropertyName("command")]
    public IList<string>? Command { get; set; }

    /// <summary>Appended after the runtime's args.</summary>
    [JsonPropertyName("args")]
    public IList<string>? Args { get; set; }

    [JsonPropertyName("env")]
    public IList<V1EnvVar>? Env { get; set; }

    [JsonPropertyName("resources")]
    public V1ResourceRequirements? Resources { get; set; }

    [JsonPropertyName("ports")]
    public IList<V1ContainerPort>? Ports { get; set; }

    [JsonPropertyName("volumeMounts")]
    public IList<V1VolumeMount>? VolumeMounts { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    private static readonly string[] NonContainerFields =
        ["modelFormat", "runtime", "storageUri", "protocolVersion", "runtimeVersion", "storage"];

    /// <summary>The container fields inlined here (typed and extension data) as a <see cref="V1Container"/>.</summary>
    public V1Container GetContainer()
    {
        var node = JsonNode.Parse(KubernetesJson.Serialize(this))!.AsObject();
        foreach (var field in NonContainerFields)
        {
            node.Remove(field);
        }

        return KubernetesJson.Deserialize<V1Container>(node.ToJsonString());
    }

    internal void Validate(ValidationCollector v, string path)
    {
        if (ModelFormat is null)
        {
            v.Add($"{path}.modelFormat", "required");
        }
        else
        {
            v.Required($"{path}.modelFormat.name", ModelFormat.Name);
        }

        v.OneOf($"{path}.protocolVersion", ProtocolVersion, V1Beta1.ProtocolVersion.All);

        // KServe also accepts local paths (no "://"); anything with a scheme must be a known one.
        if (StorageUri is not null && StorageUri.Contains("://", StringComparison.Ordinal))
        {
            v.StorageUri($"{path}.storageUri", StorageUri, required: false);
        }
    }
}

/// <summary><c>modelFormat</c>: name and optional version.</summary>
public sealed class ModelFormat
{
    [JsonPropertyName("name")]
    public string Name { get; set; } = "";

    [JsonPropertyName("version")]
    public string? Version { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary><c>autoScaling</c>: HPA/KEDA metrics (and <c>behavior</c>, kept as extension data).</summary>
public sealed class AutoScalingSpec
{
    [JsonPropertyName("metrics")]
    public IList<MetricsSpec>? Metrics { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>One autoscaling metric. <c>external</c> and <c>podmetric</c> are kept as extension data.</summary>
public sealed class MetricsSpec
{
    /// <summary><see cref="MetricSourceType"/> value. Required.</summary>
    [JsonPropertyName("type")]
    public string Type { get; set; } = "";

    [JsonPropertyName("resource")]
    public ResourceMetricSource? Resource { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>A resource (cpu or memory) metric.</summary>
public sealed class ResourceMetricSource
{
    /// <summary><see cref="ResourceMetric"/> value.</summary>
    [JsonPropertyName("name")]
    public string Name { get; set; } = "";

    [JsonPropertyName("target")]
    public MetricTarget? Target { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Target value of a metric.</summary>
public sealed class MetricTarget
{
    /// <summary><see cref="MetricTargetType"/> value.</summary>
    [JsonPropertyName("type")]
    public string? Type { get; set; }

    [JsonPropertyName("value")]
    [JsonConverter(typeof(QuantityConverter))]
    public ResourceQuantity? Value { get; set; }

    [JsonPropertyName("averageValue")]
    [JsonConverter(typeof(QuantityConverter))]
    public ResourceQuantity? AverageValue { get; set; }

    [JsonPropertyName("averageUtilization")]
    public int? AverageUtilization { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }
}
