using System.Text.Json.Nodes;
using k8s.Models;
using KServe.Node.IsvcController.Model;
using KServe.Node.IsvcController.Placement;
using KServe.Node.IsvcController.Resources;

namespace KServe.Node.IsvcController.Status;

/// <summary>A KServe (Knative-style) condition: type, status, reason, message, lastTransitionTime.</summary>
internal sealed record Condition(string Type, string Status, string? Reason, string? Message, DateTimeOffset LastTransitionTime)
{
    public const string True = "True";
    public const string False = "False";
    public const string Unknown = "Unknown";

    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["type"] = Type,
            ["status"] = Status,
            ["lastTransitionTime"] = LastTransitionTime.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
        };
        if (!string.IsNullOrEmpty(Reason))
        {
            o["reason"] = Reason;
        }

        if (!string.IsNullOrEmpty(Message))
        {
            o["message"] = Message;
        }

        return o;
    }
}

/// <summary>What the status is computed from, gathered by the reconciler.</summary>
internal sealed record StatusInputs
{
    public required IsvcSpec Isvc { get; init; }
    public IReadOnlyList<Problem> Problems { get; init; } = [];
    public CacheMatch? Cache { get; init; }
    public CacheState? CacheState { get; init; }
    public ModelSource? Source { get; init; }

    /// <summary>The Deployment's status, or null when there is no Deployment.</summary>
    public V1DeploymentStatus? Deployment { get; init; }

    public bool Stopped { get; init; }
    public int RoutesCreated { get; init; }

    /// <summary>The Ingress waits for the predictor to be ready (KServe makes it only then).</summary>
    public bool IngressPending { get; init; }

    /// <summary>The conditions currently on the object (transition times are kept when a status does not flip).</summary>
    public IReadOnlyList<Condition> Previous { get; init; } = [];
}

/// <summary>
/// Computes an InferenceService's status: KServe's <c>url</c>, <c>address</c>, <c>components.predictor</c>,
/// <c>deploymentMode</c> and conditions (PredictorReady, IngressReady, Ready), plus our ModelCached.
/// </summary>
internal static class IsvcStatus
{
    public const string PredictorReady = Api.V1Beta1.InferenceServiceConditions.PredictorReady;
    public const string IngressReady = Api.V1Beta1.InferenceServiceConditions.IngressReady;
    public const string ModelCached = "ModelCached";
    public const string Ready = Api.V1Beta1.InferenceServiceConditions.Ready;

    public static List<Condition> Conditions(StatusInputs s, IsvcControllerOptions options, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(options);
        var list = new List<Condition>();
        Condition Make(string type, string status, string? reason, string? message)
        {
            var prev = s.Previous.FirstOrDefault(c => c.Type == type);
            var time = prev is not null && prev.Status == status ? prev.LastTransitionTime : now;
            return new Condition(type, status, reason, message, time);
        }

        // ModelCached: which cache serves the model and how far it is.
        Condition cached;
        if (s.Problems.Count > 0)
        {
            cached = Make(ModelCached, Condition.Unknown, s.Problems[0].Reason, "the predictor spec is invalid");
        }
        else if (s.Cache is not null && s.CacheState is not null)
        {
            cached = Make(ModelCached, s.CacheState.AnyNodeHoldsModel ? Condition.True : Condition.False, s.CacheState.Reason, s.CacheState.Message);
        }
        else
        {
            cached = Make(ModelCached, Condition.False, "NoMatchingCache", s.Source == ModelSource.Pvc
                ? "storageUri names a PVC, mounted directly"
                : $"no LocalModelCache matches storageUri {s.Isvc.Predictor.StorageUri}: the model is downloaded by the {IsvcNames.StorageInitializerName} init container on each pod start");
        }

        // PredictorReady: invalid spec, stopped, waiting for a node that holds the model, or the Deployment's availability.
        Condition predictor;
        if (s.Problems.Count > 0)
        {
            predictor = Make(PredictorReady, Condition.False, s.Problems[0].Reason, string.Join("; ", s.Problems.Select(p => p.Message)));
        }
        else if (s.Stopped)
        {
            predictor = Make(PredictorReady, Condition.False, "Stopped", $"the InferenceService is stopped ({IsvcNames.StopAnnotation})");
        }
        else if (s.CacheState is { AnyNodeHoldsModel: false } cs)
        {
            predictor = Make(PredictorReady, Condition.False, cs.Reason, cs.Message);
        }
        else if (s.Deployment is null)
        {
            predictor = Make(PredictorReady, Condition.Unknown, "DeploymentPending", "the predictor Deployment is being created");
        }
        else if ((s.Deployment.AvailableReplicas ?? 0) > 0)
        {
            predictor = Make(PredictorReady, Condition.True, null, null);
        }
        else
        {
            var avail = s.Deployment.Conditions?.FirstOrDefault(c => c.Type == "Progressing" && c.Status == "False")
                ?? s.Deployment.Conditions?.FirstOrDefault(c => c.Type == "Available");
            predictor = Make(PredictorReady, Condition.False, avail?.Reason ?? "MinimumReplicasUnavailable",
                avail?.Message ?? "the predictor Deployment has no available replica yet");
        }

        Condition ingress;
        if (s.Problems.Count > 0)
        {
            ingress = Make(IngressReady, Condition.False, s.Problems[0].Reason, "no route is created for an invalid predictor");
        }
        else if (s.RoutesCreated > 0)
        {
            ingress = Make(IngressReady, Condition.True, null, null);
        }
        else if (s.IngressPending)
        {
            // KServe's reason, word for word.
            ingress = Make(IngressReady, Condition.False, "Predictor ingress not created", "the Ingress is created once the predictor is ready");
        }
        else
        {
            var why = s.Stopped ? "the InferenceService is stopped"
                : !options.EnableGatewayApi && options.DisableIngressCreation ? "neither Gateway API routes nor an Ingress are created"
                : "the InferenceService is cluster-local";
            ingress = Make(IngressReady, Condition.True, "ClusterLocal", $"{why}: reach the predictor at {AddressUrl(s.Isvc)}");
        }

        var ready = predictor.Status == Condition.True && ingress.Status == Condition.True
            ? Make(Ready, Condition.True, null, null)
            : Make(Ready, predictor.Status == Condition.True ? ingress.Status : predictor.Status,
                predictor.Status == Condition.True ? ingress.Reason : predictor.Reason,
                predictor.Status == Condition.True ? ingress.Message : predictor.Message);

        list.Add(ingress);
        list.Add(cached);
        list.Add(predictor);
        list.Add(ready);
        return list;
    }

    /// <summary>The whole <c>status</c> object this controller writes.</summary>
    public static JsonObject Build(StatusInputs s, IsvcControllerOptions options, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(options);
        var conditions = new JsonArray();
        foreach (var c in Conditions(s, options, now))
        {
            conditions.Add(c.ToJson());
        }

        var status = new JsonObject
        {
            ["observedGeneration"] = s.Isvc.Generation,
            ["deploymentMode"] = "Standard",
            ["conditions"] = conditions,
        };
        if (s.Problems.Count == 0)
        {
            var url = $"{options.UrlScheme}://{PredictorBuilder.Host(s.Isvc.Name, s.Isvc.Namespace, options)}";
            var address = AddressUrl(s.Isvc);
            status["url"] = url;
            status["address"] = new JsonObject { ["url"] = address };
            status["components"] = new JsonObject
            {
                ["predictor"] = new JsonObject
                {
                    ["url"] = $"{options.UrlScheme}://{PredictorBuilder.Host(PredictorBuilder.PredictorName(s.Isvc), s.Isvc.Namespace, options)}",
                    ["address"] = new JsonObject { ["url"] = address },
                },
            };
            status["clusterServingRuntimeName"] = options.RuntimeName;
        }

        return status;
    }

    /// <summary>The cluster-local URL of the predictor Service.</summary>
    public static string AddressUrl(IsvcSpec isvc) =>
        $"http://{PredictorBuilder.PredictorName(isvc)}.{isvc.Namespace}.svc.cluster.local";

    /// <summary>Reads the conditions currently in <c>status.conditions</c>.</summary>
    public static List<Condition> ReadConditions(JsonNode? status)
    {
        var list = new List<Condition>();
        if (status?["conditions"] is not JsonArray arr)
        {
            return list;
        }

        foreach (var n in arr.OfType<JsonObject>())
        {
            var type = n["type"]?.GetValue<string>();
            var st = n["status"]?.GetValue<string>();
            if (type is null || st is null)
            {
                continue;
            }

            DateTimeOffset.TryParse(n["lastTransitionTime"]?.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AssumeUniversal, out var t);
            list.Add(new Condition(type, st, n["reason"]?.GetValue<string>(), n["message"]?.GetValue<string>(), t));
        }

        return list;
    }
}
