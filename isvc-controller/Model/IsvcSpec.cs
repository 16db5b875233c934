using k8s.Models;

namespace KServe.Node.IsvcController.Model;

/// <summary>
/// The part of an InferenceService this controller acts on, read from its wire JSON (so fields outside the
/// subset are never touched, and a user's object is never rewritten by this view).
/// </summary>
internal sealed record IsvcSpec
{
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public string? Uid { get; init; }
    public long Generation { get; init; }
    public bool Deleting { get; init; }
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public required PredictorSpec Predictor { get; init; }

    public string? Annotation(string key) => Annotations.TryGetValue(key, out var v) ? v : null;
}

/// <summary><c>spec.predictor</c>: the model implementation, the inline pod spec and the component extension.</summary>
internal sealed record PredictorSpec
{
    /// <summary><c>spec.predictor.name</c>: a variant name that changes resource names to <c>{isvc}-{name}-predictor</c>.</summary>
    public string? VariantName { get; init; }

    /// <summary>True when <c>spec.predictor.model</c> is present.</summary>
    public bool HasModel { get; init; }

    /// <summary>Framework shortcuts (<c>sklearn</c>, <c>huggingface</c>, …) present besides or instead of <c>model</c>.</summary>
    public IReadOnlyList<string> OtherImplementations { get; init; } = [];

    public string? ModelFormat { get; init; }
    public string? ModelFormatVersion { get; init; }
    public string? Runtime { get; init; }
    public string? StorageUri { get; init; }
    public string? ProtocolVersion { get; init; }

    /// <summary><c>spec.predictor.model.storage.parameters</c> (allowPatterns for a download, as on caches).</summary>
    public IReadOnlyDictionary<string, string> StorageParameters { get; init; } = new Dictionary<string, string>();

    /// <summary>The inline container of <c>spec.predictor.model</c> (image, args, env, resources, ports, …).</summary>
    public V1Container Container { get; init; } = new();

    /// <summary>The inline pod spec of <c>spec.predictor</c> (nodeSelector, tolerations, affinity, volumes, …).</summary>
    public V1PodSpec PodSpec { get; init; } = new();

    public int? MinReplicas { get; init; }
    public int MaxReplicas { get; init; }
    public string? ScaleMetric { get; init; }
    public string? ScaleMetricType { get; init; }
    public int? ScaleTarget { get; init; }
    public IReadOnlyList<MetricSpec> AutoScalingMetrics { get; init; } = [];
    public V2HorizontalPodAutoscalerBehavior? AutoScalingBehavior { get; init; }
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public V1DeploymentStrategy? DeploymentStrategy { get; init; }
    public long? TimeoutSeconds { get; init; }
}

/// <summary>One entry of <c>spec.predictor.autoScaling.metrics</c> (KServe's MetricsSpec).</summary>
internal sealed record MetricSpec
{
    /// <summary><c>Resource</c>, <c>External</c> or <c>PodMetric</c>.</summary>
    public required string Type { get; init; }

    /// <summary>The resource (<c>cpu</c>, <c>memory</c>) or the metric name.</summary>
    public string? Name { get; init; }

    public string? TargetType { get; init; }
    public int? AverageUtilization { get; init; }
    public string? AverageValue { get; init; }
    public string? Value { get; init; }
}
