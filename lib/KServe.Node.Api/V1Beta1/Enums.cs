namespace KServe.Node.Api.V1Beta1;

/// <summary><c>spec.predictor.model.protocolVersion</c> values.</summary>
public static class ProtocolVersion
{
    public const string V1 = "v1";
    public const string V2 = "v2";
    public const string GrpcV1 = "grpc-v1";
    public const string GrpcV2 = "grpc-v2";

    public static IReadOnlyList<string> All { get; } = [V1, V2, GrpcV1, GrpcV2];
}

/// <summary><c>spec.predictor.scaleMetric</c> values.</summary>
public static class ScaleMetric
{
    public const string Cpu = "cpu";
    public const string Memory = "memory";
    public const string Concurrency = "concurrency";
    public const string Rps = "rps";

    public static IReadOnlyList<string> All { get; } = [Cpu, Memory, Concurrency, Rps];
}

/// <summary><c>spec.predictor.scaleMetricType</c> and <c>autoScaling.metrics[].resource.target.type</c> values.</summary>
public static class MetricTargetType
{
    public const string Utilization = "Utilization";
    public const string Value = "Value";
    public const string AverageValue = "AverageValue";

    public static IReadOnlyList<string> All { get; } = [Utilization, Value, AverageValue];
}

/// <summary><c>autoScaling.metrics[].type</c> values.</summary>
public static class MetricSourceType
{
    public const string Resource = "Resource";
    public const string External = "External";
    public const string PodMetric = "PodMetric";

    public static IReadOnlyList<string> All { get; } = [Resource, External, PodMetric];
}

/// <summary><c>autoScaling.metrics[].resource.name</c> values.</summary>
public static class ResourceMetric
{
    public const string Cpu = "cpu";
    public const string Memory = "memory";

    public static IReadOnlyList<string> All { get; } = [Cpu, Memory];
}

/// <summary>Values of the <c>serving.kserve.io/deploymentMode</c> annotation and <c>status.deploymentMode</c>.</summary>
public static class DeploymentMode
{
    public const string Standard = "Standard";
    public const string Knative = "Knative";
    public const string ModelMesh = "ModelMesh";

    /// <summary>Legacy name of <see cref="Standard"/>.</summary>
    public const string RawDeployment = "RawDeployment";

    /// <summary>Legacy name of <see cref="Knative"/>.</summary>
    public const string Serverless = "Serverless";

    /// <summary>Every accepted value, legacy names included.</summary>
    public static IReadOnlyList<string> All { get; } = [Standard, Knative, ModelMesh, RawDeployment, Serverless];

    /// <summary>Maps the legacy names to the current ones; an empty value means <see cref="Standard"/>.</summary>
    public static string Normalize(string? mode) => mode switch
    {
        null or "" or RawDeployment => Standard,
        Serverless => Knative,
        _ => mode,
    };
}

/// <summary>Values of the <c>serving.kserve.io/autoscalerClass</c> annotation.</summary>
public static class AutoscalerClass
{
    public const string Hpa = "hpa";
    public const string Keda = "keda";
    public const string External = "external";
    public const string None = "none";

    public static IReadOnlyList<string> All { get; } = [Hpa, Keda, External, None];
}

/// <summary>InferenceService condition types.</summary>
public static class InferenceServiceConditions
{
    public const string PredictorReady = "PredictorReady";
    public const string IngressReady = "IngressReady";
    public const string Ready = "Ready";
    public const string RoutesReady = "RoutesReady";
    public const string LatestDeploymentReady = "LatestDeploymentReady";
    public const string Stopped = "Stopped";
}

/// <summary>Defaults KServe applies to a predictor (spec §9.1).</summary>
public static class InferenceServiceDefaults
{
    /// <summary>Default <c>minReplicas</c>.</summary>
    public const int MinReplicas = 1;

    /// <summary>Default HPA CPU utilisation target in percent (memory has none).</summary>
    public const int CpuScaleTarget = 80;

    /// <summary>Default request timeout in seconds.</summary>
    public const long TimeoutSeconds = 60;

    /// <summary>Default scale metric in Standard (raw) mode.</summary>
    public const string ScaleMetric = V1Beta1.ScaleMetric.Cpu;

    /// <summary>Default autoscaler class.</summary>
    public const string AutoscalerClass = V1Beta1.AutoscalerClass.Hpa;
}

/// <summary><c>status.modelStatus.transitionStatus</c> values.</summary>
public static class TransitionStatus
{
    public const string UpToDate = "UpToDate";
    public const string InProgress = "InProgress";
    public const string BlockedByFailedLoad = "BlockedByFailedLoad";
    public const string InvalidSpec = "InvalidSpec";

    public static IReadOnlyList<string> All { get; } = ["", UpToDate, InProgress, BlockedByFailedLoad, InvalidSpec];
}

/// <summary><c>status.modelStatus.states.*ModelState</c> values.</summary>
public static class ModelState
{
    public const string Pending = "Pending";
    public const string Standby = "Standby";
    public const string Loading = "Loading";
    public const string Loaded = "Loaded";
    public const string FailedToLoad = "FailedToLoad";

    public static IReadOnlyList<string> All { get; } = ["", Pending, Standby, Loading, Loaded, FailedToLoad];
}
