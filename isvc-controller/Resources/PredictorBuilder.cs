using System.Globalization;
using System.Text.Json.Nodes;
using k8s.Models;
using KServe.Node.IsvcController.Model;
using KServe.Node.IsvcController.Placement;

namespace KServe.Node.IsvcController.Resources;

/// <summary>Where the model comes from, which decides the pod's volumes, init container and placement.</summary>
internal enum ModelSource
{
    /// <summary>A LocalModelCache holds it: the serving PVC is mounted and pods go only to nodes holding it.</summary>
    Cache,

    /// <summary><c>pvc://claim/path</c>: the claim is mounted directly.</summary>
    Pvc,

    /// <summary>Anything else: the node-agent's one-shot download fills an emptyDir before the server starts.</summary>
    Download,
}

/// <summary>The children of one InferenceService in Standard mode, as desired.</summary>
internal sealed record PredictorPlan
{
    public required V1Deployment Deployment { get; init; }
    public required V1Service Service { get; init; }

    /// <summary>The HPA, or null when none should exist (another autoscaler class, stopped, or no node holds the model).</summary>
    public V2HorizontalPodAutoscaler? Hpa { get; init; }

    /// <summary>HTTPRoutes (Gateway API), as generic objects; empty when Gateway API is off or the service is cluster-local.</summary>
    public IReadOnlyList<JsonObject> Routes { get; init; } = [];

    /// <summary>
    /// The Ingress KServe makes in Standard mode when Gateway API is off (null when that is on, ingress creation is
    /// disabled, or the service is cluster-local or stopped). Created only once the predictor is ready, as KServe does.
    /// </summary>
    public V1Ingress? Ingress { get; init; }

    /// <summary>
    /// True when something other than this controller (the HPA, KEDA, an external autoscaler) owns
    /// <c>spec.replicas</c> once pods may run: the controller then sets replicas only when they are 0.
    /// </summary>
    public bool ReplicasOwnedElsewhere { get; init; }

    public required ModelSource Source { get; init; }
}

/// <summary>
/// Builds the Deployment, Service, HPA and HTTPRoutes of an InferenceService with KServe's names, labels and
/// defaults (spec §9.2), and the pod that runs llm-server on the model.
/// </summary>
internal static class PredictorBuilder
{
    public const string GatewayGroup = "gateway.networking.k8s.io";
    private const string LastApplied = "kubectl.kubernetes.io/last-applied-configuration";

    /// <summary>KServe's predictor resource name: <c>{isvc}-predictor</c>, or <c>{isvc}-{name}-predictor</c>.</summary>
    public static string PredictorName(IsvcSpec isvc)
    {
        ArgumentNullException.ThrowIfNull(isvc);
        return string.IsNullOrEmpty(isvc.Predictor.VariantName)
            ? $"{isvc.Name}-predictor"
            : $"{isvc.Name}-{isvc.Predictor.VariantName}-predictor";
    }

    /// <summary>The controller owner reference every child carries.</summary>
    public static V1OwnerReference OwnerReference(IsvcSpec isvc) => new()
    {
        ApiVersion = IsvcNames.IsvcApiVersion,
        Kind = IsvcNames.IsvcKind,
        Name = isvc.Name,
        Uid = isvc.Uid,
        Controller = true,
        BlockOwnerDeletion = true,
    };

    /// <param name="isvc">The InferenceService.</param>
    /// <param name="options">The runtime configuration.</param>
    /// <param name="cache">The matching cache, if any.</param>
    /// <param name="podsAllowed">False while no node holds a cached model: replicas stay 0 and no HPA exists.</param>
    public static PredictorPlan Build(IsvcSpec isvc, IsvcControllerOptions options, CacheMatch? cache, bool podsAllowed)
    {
        ArgumentNullException.ThrowIfNull(isvc);
        ArgumentNullException.ThrowIfNull(options);
        var name = PredictorName(isvc);
        var labels = ChildLabels(isvc);
        var annotations = ChildAnnotations(isvc);
        var owner = OwnerReference(isvc);
        var stopped = string.Equals(isvc.Annotation(IsvcNames.StopAnnotation), "true", StringComparison.OrdinalIgnoreCase);
        var autoscaler = isvc.Annotation(IsvcNames.AutoscalerClassAnnotation) ?? "hpa";
        var run = podsAllowed && !stopped;
        var min = isvc.Predictor.MinReplicas ?? Api.V1Beta1.InferenceServiceDefaults.MinReplicas;

        var pod = BuildPod(isvc, options, cache, out var source);
        var podLabels = new Dictionary<string, string>(labels) { [IsvcNames.AppLabel] = $"isvc.{name}" };
        var podAnnotations = new Dictionary<string, string>(annotations)
        {
            [IsvcNames.PrometheusKServePort] = ContainerPort(pod).ToString(CultureInfo.InvariantCulture),
            [IsvcNames.PrometheusKServePath] = "/metrics",
        };

        var deployment = new V1Deployment
        {
            ApiVersion = "apps/v1",
            Kind = "Deployment",
            Metadata = Meta(name, isvc.Namespace, labels, annotations, owner),
            Spec = new V1DeploymentSpec
            {
                // KServe's HPA (and this controller) never runs fewer than one replica when pods may run.
                Replicas = !run ? 0 : autoscaler == "none" ? min : Math.Max(1, min),
                Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { [IsvcNames.AppLabel] = $"isvc.{name}" } },
                Strategy = isvc.Predictor.DeploymentStrategy ?? new V1DeploymentStrategy
                {
                    Type = "RollingUpdate",
                    RollingUpdate = new V1RollingUpdateDeployment { MaxUnavailable = "25%", MaxSurge = "25%" },
                },
                RevisionHistoryLimit = 10,
                ProgressDeadlineSeconds = 600,
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = podLabels, Annotations = podAnnotations },
                    Spec = pod,
                },
            },
        };

        var port = ContainerPort(pod);
        var portName = pod.Containers[0].Ports?.FirstOrDefault()?.Name;
        var service = new V1Service
        {
            ApiVersion = "v1",
            Kind = "Service",
            Metadata = Meta(name, isvc.Namespace, labels, annotations, owner),
            Spec = new V1ServiceSpec
            {
                Type = "ClusterIP",
                Selector = new Dictionary<string, string> { [IsvcNames.AppLabel] = $"isvc.{name}" },
                Ports = [new V1ServicePort { Name = string.IsNullOrEmpty(portName) ? name : portName, Port = 80, TargetPort = port, Protocol = "TCP" }],
            },
        };

        var hpa = run && autoscaler == "hpa" ? BuildHpa(isvc, options, name, labels, annotations, owner) : null;
        var exposed = !stopped
            && !string.Equals(isvc.Labels.GetValueOrDefault(IsvcNames.VisibilityLabel), IsvcNames.ClusterLocalVisibility, StringComparison.Ordinal);
        var routes = options.EnableGatewayApi && exposed ? BuildRoutes(isvc, options, name, labels, annotations, owner) : [];
        var ingress = !options.EnableGatewayApi && !options.DisableIngressCreation && exposed && options.IngressDomain != ClusterLocalDomain
            ? BuildIngress(isvc, options, name, labels, owner)
            : null;

        return new PredictorPlan
        {
            Deployment = deployment,
            Service = service,
            Hpa = hpa,
            Routes = routes,
            Ingress = ingress,
            ReplicasOwnedElsewhere = autoscaler != "none",
            Source = source,
        };
    }

    /// <summary>
    /// The replicas to write on an existing Deployment: the desired value while this controller owns replicas
    /// (autoscaler class none, or pods not allowed), else only a lift from 0 (an HPA does not scale a target at 0).
    /// Null means leave <c>spec.replicas</c> as it is.
    /// </summary>
    public static int? ReplicasToWrite(PredictorPlan plan, int? actualReplicas)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var desired = plan.Deployment.Spec.Replicas ?? 0;
        if (!plan.ReplicasOwnedElsewhere || desired == 0)
        {
            return actualReplicas == desired ? null : desired;
        }

        return actualReplicas is null or 0 ? desired : null;
    }

    internal static Dictionary<string, string> ChildLabels(IsvcSpec isvc)
    {
        var labels = new Dictionary<string, string>(isvc.Labels, StringComparer.Ordinal);
        foreach (var (k, v) in isvc.Predictor.Labels)
        {
            labels[k] = v;
        }

        labels[IsvcNames.IsvcLabel] = isvc.Name;
        labels[IsvcNames.ComponentLabel] = IsvcNames.PredictorComponent;
        return labels;
    }

    internal static Dictionary<string, string> ChildAnnotations(IsvcSpec isvc)
    {
        var annotations = isvc.Annotations
            .Where(kv => kv.Key != LastApplied)
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        foreach (var (k, v) in isvc.Predictor.Annotations)
        {
            annotations[k] = v;
        }

        return annotations;
    }

    private static V1ObjectMeta Meta(string name, string ns, Dictionary<string, string> labels, Dictionary<string, string> annotations, V1OwnerReference owner) => new()
    {
        Name = name,
        NamespaceProperty = ns,
        Labels = new Dictionary<string, string>(labels),
        Annotations = annotations.Count == 0 ? null : new Dictionary<string, string>(annotations),
        OwnerReferences = [owner],
    };

    private static int ContainerPort(V1PodSpec pod) => pod.Containers[0].Ports?.FirstOrDefault()?.ContainerPort ?? 8080;

    private static V1PodSpec BuildPod(IsvcSpec isvc, IsvcControllerOptions options, CacheMatch? cache, out ModelSource source)
    {
        // The inline pod spec of the predictor passes through (nodeSelector, tolerations, affinity, volumes,
        // serviceAccountName, securityContext, …); containers are ours.
        var pod = JsonDiff.Clone(isvc.Predictor.PodSpec);
        pod.Containers = [];
        var volumes = new List<V1Volume>(pod.Volumes ?? []);
        var initContainers = new List<V1Container>(pod.InitContainers ?? []);
        // storage.kserve.io/readonly: "false" is honoured for a claim of the user's own (pvc://) only: the node cache is
        // shared by every InferenceService on the node, and one of them must not be able to change what the others serve.
        var readOnly = !string.Equals(isvc.Annotation(IsvcNames.ReadOnlyModelAnnotation), "false", StringComparison.OrdinalIgnoreCase);
        var uri = isvc.Predictor.StorageUri ?? "";
        V1VolumeMount modelMount;

        if (cache is not null)
        {
            source = ModelSource.Cache;
            volumes.Add(new V1Volume
            {
                Name = IsvcNames.PvcSourceVolume,
                PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = cache.PvcName, ReadOnlyProperty = true },
            });
            modelMount = new V1VolumeMount { Name = IsvcNames.PvcSourceVolume, MountPath = IsvcNames.ModelMountPath, SubPath = cache.VolumeSubPath, ReadOnlyProperty = true };
            pod.Affinity = RequirePlacement(pod.Affinity, IsvcNames.PlacementLabel(cache.StorageKey));
        }
        else if (uri.StartsWith("pvc://", StringComparison.Ordinal))
        {
            source = ModelSource.Pvc;
            var rest = uri["pvc://".Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            var claim = slash < 0 ? rest : rest[..slash];
            var path = slash < 0 ? null : rest[(slash + 1)..].TrimEnd('/');
            volumes.Add(new V1Volume
            {
                Name = IsvcNames.PvcSourceVolume,
                PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = claim, ReadOnlyProperty = readOnly },
            });
            modelMount = new V1VolumeMount { Name = IsvcNames.PvcSourceVolume, MountPath = IsvcNames.ModelMountPath, SubPath = string.IsNullOrEmpty(path) ? null : path, ReadOnlyProperty = readOnly };
        }
        else
        {
            source = ModelSource.Download;
            volumes.Add(new V1Volume { Name = IsvcNames.ProvisionVolume, EmptyDir = new V1EmptyDirVolumeSource() });
            initContainers.Add(DownloadContainer(isvc, options));
            modelMount = new V1VolumeMount { Name = IsvcNames.ProvisionVolume, MountPath = IsvcNames.ModelMountPath, ReadOnlyProperty = true };
        }

        string? shm = null;
        if (!string.IsNullOrEmpty(options.ShmSizeLimit) && !volumes.Any(v => v.Name == IsvcNames.ShmVolume))
        {
            shm = IsvcNames.ShmVolume;
            volumes.Add(new V1Volume { Name = shm, EmptyDir = new V1EmptyDirVolumeSource { Medium = "Memory", SizeLimit = new ResourceQuantity(options.ShmSizeLimit) } });
        }

        pod.Containers.Add(LlmServerContainer.Build(isvc, options, modelMount, shm));
        pod.Volumes = volumes;
        pod.InitContainers = initContainers.Count == 0 ? null : initContainers;
        return pod;
    }

    /// <summary>The init container: <c>node-agent download URI /mnt/models [--allow GLOBS]</c> into the emptyDir.</summary>
    internal static V1Container DownloadContainer(IsvcSpec isvc, IsvcControllerOptions options)
    {
        var args = new List<string> { "download", isvc.Predictor.StorageUri ?? "", IsvcNames.ModelMountPath };
        if (isvc.Predictor.StorageParameters.TryGetValue("allowPatterns", out var allow) && !string.IsNullOrWhiteSpace(allow))
        {
            args.Add("--allow");
            args.Add(allow);
        }

        var user = isvc.Predictor.Container;
        return new V1Container
        {
            Name = IsvcNames.StorageInitializerName,
            Image = options.DownloaderImage,
            Command = options.DownloaderCommand.Count > 0 ? [.. options.DownloaderCommand] : null,
            Args = args,
            // Credentials the user hands the server (HF_TOKEN, AWS_*, secret refs) reach the download as well.
            Env = user.Env is { Count: > 0 } ? [.. user.Env] : null,
            EnvFrom = user.EnvFrom is { Count: > 0 } ? [.. user.EnvFrom] : null,
            VolumeMounts = [new V1VolumeMount { Name = IsvcNames.ProvisionVolume, MountPath = IsvcNames.ModelMountPath }],
            Resources = new V1ResourceRequirements
            {
                Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("100Mi") },
                Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("1"), ["memory"] = new("1Gi") },
            },
            TerminationMessagePolicy = "FallbackToLogsOnError",
        };
    }

    /// <summary>
    /// Adds a required node-affinity expression <c>{label} In [true]</c>: to every term the user wrote (terms are
    /// ORed, so each must carry it), or as the only term.
    /// </summary>
    internal static V1Affinity RequirePlacement(V1Affinity? affinity, string label)
    {
        var result = affinity is null ? new V1Affinity() : JsonDiff.Clone(affinity);
        result.NodeAffinity ??= new V1NodeAffinity();
        var required = result.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution ??= new V1NodeSelector { NodeSelectorTerms = [] };
        required.NodeSelectorTerms ??= [];
        if (required.NodeSelectorTerms.Count == 0)
        {
            required.NodeSelectorTerms.Add(new V1NodeSelectorTerm());
        }

        foreach (var term in required.NodeSelectorTerms)
        {
            term.MatchExpressions ??= [];
            if (!term.MatchExpressions.Any(e => e.Key == label))
            {
                term.MatchExpressions.Add(new V1NodeSelectorRequirement { Key = label, OperatorProperty = "In", Values = ["true"] });
            }
        }

        return result;
    }

    private static V2HorizontalPodAutoscaler BuildHpa(IsvcSpec isvc, IsvcControllerOptions options, string name, Dictionary<string, string> labels, Dictionary<string, string> annotations, V1OwnerReference owner)
    {
        var p = isvc.Predictor;
        var min = Math.Max(1, p.MinReplicas ?? Api.V1Beta1.InferenceServiceDefaults.MinReplicas);
        return new V2HorizontalPodAutoscaler
        {
            ApiVersion = "autoscaling/v2",
            Kind = "HorizontalPodAutoscaler",
            Metadata = Meta(name, isvc.Namespace, labels, annotations, owner),
            Spec = new V2HorizontalPodAutoscalerSpec
            {
                ScaleTargetRef = new V2CrossVersionObjectReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = name },
                MinReplicas = min,
                MaxReplicas = Math.Max(p.MaxReplicas, min),
                Metrics = HpaMetrics(isvc, options),
                Behavior = p.AutoScalingBehavior,
            },
        };
    }

    /// <summary>
    /// HPA metrics, first match wins: <c>autoScaling.metrics</c>; <c>scaleMetric</c>/<c>scaleTarget</c>; the
    /// <c>serving.kserve.io/metrics</c> and <c>targetUtilizationPercentage</c> annotations, where a name other
    /// than cpu or memory (e.g. <c>vllm:num_requests_waiting</c>) is a per-pod custom metric with that average
    /// value; else CPU at the default utilisation.
    /// </summary>
    internal static List<V2MetricSpec> HpaMetrics(IsvcSpec isvc, IsvcControllerOptions options)
    {
        var p = isvc.Predictor;
        if (p.AutoScalingMetrics.Count > 0)
        {
            return [.. p.AutoScalingMetrics.Select(FromKServe).OfType<V2MetricSpec>()];
        }

        if (p.ScaleMetric is "cpu" or "memory" || p.ScaleTarget is not null)
        {
            var metric = p.ScaleMetric is "memory" ? "memory" : "cpu";
            var target = p.ScaleTarget ?? (metric == "cpu" ? options.DefaultCpuUtilization : (int?)null);
            if (target is null)
            {
                // KServe sets no memory metric without a target; fall back to CPU as it does.
                return [Resource("cpu", "Utilization", options.DefaultCpuUtilization, null)];
            }

            return [Resource(metric, p.ScaleMetricType ?? "Utilization", target.Value, null)];
        }

        var annotated = isvc.Annotation(IsvcNames.MetricsAnnotation);
        var targetAnnotation = isvc.Annotation(IsvcNames.TargetUtilizationAnnotation);
        var annotatedTarget = int.TryParse(targetAnnotation, CultureInfo.InvariantCulture, out var t) && t > 0 ? t : (int?)null;
        if (!string.IsNullOrEmpty(annotated))
        {
            if (annotated is "cpu" or "memory")
            {
                return [Resource(annotated, "Utilization", annotatedTarget ?? options.DefaultCpuUtilization, null)];
            }

            return
            [
                new V2MetricSpec
                {
                    Type = "Pods",
                    Pods = new V2PodsMetricSource
                    {
                        Metric = new V2MetricIdentifier { Name = annotated },
                        Target = new V2MetricTarget { Type = "AverageValue", AverageValue = new ResourceQuantity((annotatedTarget ?? 1).ToString(CultureInfo.InvariantCulture)) },
                    },
                },
            ];
        }

        return [Resource("cpu", "Utilization", annotatedTarget ?? options.DefaultCpuUtilization, null)];
    }

    private static V2MetricSpec Resource(string name, string type, int target, string? value) => new()
    {
        Type = "Resource",
        Resource = new V2ResourceMetricSource
        {
            Name = name,
            Target = type == "Utilization"
                ? new V2MetricTarget { Type = "Utilization", AverageUtilization = target }
                : new V2MetricTarget { Type = type, AverageValue = type == "AverageValue" ? new ResourceQuantity(value ?? target.ToString(CultureInfo.InvariantCulture)) : null, Value = type == "Value" ? new ResourceQuantity(value ?? target.ToString(CultureInfo.InvariantCulture)) : null },
        },
    };

    private static V2MetricSpec? FromKServe(MetricSpec m)
    {
        var target = new V2MetricTarget
        {
            Type = m.TargetType ?? (m.AverageUtilization is not null ? "Utilization" : m.AverageValue is not null ? "AverageValue" : "Value"),
            AverageUtilization = m.AverageUtilization,
            AverageValue = m.AverageValue is null ? null : new ResourceQuantity(m.AverageValue),
            Value = m.Value is null ? null : new ResourceQuantity(m.Value),
        };
        return m.Type switch
        {
            "Resource" => new V2MetricSpec { Type = "Resource", Resource = new V2ResourceMetricSource { Name = m.Name, Target = target } },
            "PodMetric" when !string.IsNullOrEmpty(m.Name) => new V2MetricSpec { Type = "Pods", Pods = new V2PodsMetricSource { Metric = new V2MetricIdentifier { Name = m.Name }, Target = target } },
            "External" when !string.IsNullOrEmpty(m.Name) => new V2MetricSpec { Type = "External", External = new V2ExternalMetricSource { Metric = new V2MetricIdentifier { Name = m.Name }, Target = target } },
            _ => null,
        };
    }

    /// <summary>KServe's host name: <c>{name}-{namespace}.{domain}</c>.</summary>
    public static string Host(string name, string ns, IsvcControllerOptions options) => $"{name}-{ns}.{options.IngressDomain}";

    /// <summary>The ingress domain that means "cluster-local only": KServe then makes no Ingress.</summary>
    public const string ClusterLocalDomain = "svc.cluster.local";

    /// <summary>
    /// KServe's Standard-mode Ingress: named as the InferenceService, its annotations copied, one rule for the service's
    /// host and one for the predictor's, each sending every path to the predictor Service's port 80.
    /// </summary>
    private static V1Ingress BuildIngress(IsvcSpec isvc, IsvcControllerOptions options, string predictorName, Dictionary<string, string> labels, V1OwnerReference owner)
    {
        V1IngressRule Rule(string host) => new()
        {
            Host = host,
            Http = new V1HTTPIngressRuleValue
            {
                Paths =
                [
                    new V1HTTPIngressPath
                    {
                        Path = "/",
                        PathType = "Prefix",
                        Backend = new V1IngressBackend { Service = new V1IngressServiceBackend { Name = predictorName, Port = new V1ServiceBackendPort { Number = 80 } } },
                    },
                ],
            },
        };

        return new V1Ingress
        {
            ApiVersion = "networking.k8s.io/v1",
            Kind = "Ingress",
            Metadata = Meta(isvc.Name, isvc.Namespace, labels, new Dictionary<string, string>(isvc.Annotations), owner),
            Spec = new V1IngressSpec
            {
                IngressClassName = string.IsNullOrEmpty(options.IngressClassName) ? null : options.IngressClassName,
                Rules = [Rule(Host(isvc.Name, isvc.Namespace, options)), Rule(Host(predictorName, isvc.Namespace, options))],
            },
        };
    }

    private static List<JsonObject> BuildRoutes(IsvcSpec isvc, IsvcControllerOptions options, string predictorName, Dictionary<string, string> labels, Dictionary<string, string> annotations, V1OwnerReference owner)
    {
        var gw = options.IngressGateway.Split('/', 2);
        var timeout = isvc.Predictor.TimeoutSeconds ?? options.DefaultTimeoutSeconds;
        JsonObject Route(string name) => new()
        {
            ["apiVersion"] = $"{GatewayGroup}/v1",
            ["kind"] = "HTTPRoute",
            ["metadata"] = new JsonObject
            {
                ["name"] = name,
                ["namespace"] = isvc.Namespace,
                ["labels"] = ToJson(labels),
                ["annotations"] = ToJson(annotations),
                ["ownerReferences"] = new JsonArray(new JsonObject
                {
                    ["apiVersion"] = owner.ApiVersion,
                    ["kind"] = owner.Kind,
                    ["name"] = owner.Name,
                    ["uid"] = owner.Uid,
                    ["controller"] = true,
                    ["blockOwnerDeletion"] = true,
                }),
            },
            ["spec"] = new JsonObject
            {
                ["parentRefs"] = new JsonArray(new JsonObject
                {
                    ["group"] = GatewayGroup,
                    ["kind"] = "Gateway",
                    ["name"] = gw[1],
                    ["namespace"] = gw[0],
                }),
                ["hostnames"] = new JsonArray(Host(name, isvc.Namespace, options)),
                ["rules"] = new JsonArray(new JsonObject
                {
                    ["matches"] = new JsonArray(new JsonObject
                    {
                        ["path"] = new JsonObject { ["type"] = "RegularExpression", ["value"] = "^/.*$" },
                    }),
                    ["filters"] = new JsonArray(new JsonObject
                    {
                        ["type"] = "RequestHeaderModifier",
                        ["requestHeaderModifier"] = new JsonObject
                        {
                            ["set"] = new JsonArray(
                                new JsonObject { ["name"] = "KServe-Isvc-Name", ["value"] = isvc.Name },
                                new JsonObject { ["name"] = "KServe-Isvc-Namespace", ["value"] = isvc.Namespace }),
                        },
                    }),
                    ["backendRefs"] = new JsonArray(new JsonObject
                    {
                        ["group"] = "",
                        ["kind"] = "Service",
                        ["name"] = predictorName,
                        ["namespace"] = isvc.Namespace,
                        ["port"] = 80,
                    }),
                    ["timeouts"] = new JsonObject { ["request"] = $"{timeout}s" },
                }),
            },
        };

        return [Route(isvc.Name), Route(predictorName)];
    }

    private static JsonObject ToJson(Dictionary<string, string> map)
    {
        var o = new JsonObject();
        foreach (var (k, v) in map)
        {
            o[k] = v;
        }

        return o;
    }
}
