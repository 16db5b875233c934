using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace KServe.Node.IsvcController.Model;

/// <summary>A problem with one field of an InferenceService, phrased for a user.</summary>
internal sealed record FieldError(string Field, string Message)
{
    public override string ToString() => $"{Field}: {Message}";
}

/// <summary>
/// Reads <see cref="IsvcSpec"/> from an InferenceService's JSON. Our CRD keeps unknown fields and a user may
/// write anything, so a wrong type becomes a <see cref="FieldError"/> naming the field, never an exception.
/// </summary>
internal static class IsvcReader
{
    // Predictor implementations KServe knows besides `model` (the framework shortcuts).
    private static readonly string[] s_frameworks =
    [
        "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "pmml", "lightgbm", "paddle",
        "huggingface", "torchserve",
    ];

    public static (IsvcSpec Spec, IReadOnlyList<FieldError> Errors) Read(JsonObject isvc)
    {
        ArgumentNullException.ThrowIfNull(isvc);
        var errors = new List<FieldError>();
        var meta = isvc["metadata"] as JsonObject ?? [];
        var spec = isvc["spec"] as JsonObject;
        var predictor = spec?["predictor"] as JsonObject;
        if (predictor is null)
        {
            errors.Add(new FieldError("spec.predictor", "is required"));
        }

        var p = ReadPredictor(predictor ?? [], errors);
        var result = new IsvcSpec
        {
            Namespace = Str(meta, "namespace") ?? "default",
            Name = Str(meta, "name") ?? "",
            Uid = Str(meta, "uid"),
            Generation = meta["generation"] is JsonValue g && g.TryGetValue(out long gen) ? gen : 0,
            Deleting = meta["deletionTimestamp"] is not null,
            Labels = StringMap(meta, "labels", "metadata.labels", errors),
            Annotations = StringMap(meta, "annotations", "metadata.annotations", errors),
            Predictor = p,
        };
        return (result, errors);
    }

    private static PredictorSpec ReadPredictor(JsonObject predictor, List<FieldError> errors)
    {
        var model = predictor["model"] as JsonObject;
        var modelFormat = model?["modelFormat"] as JsonObject;
        var storage = model?["storage"] as JsonObject;
        var autoScaling = predictor["autoScaling"] as JsonObject;

        return new PredictorSpec
        {
            VariantName = Str(predictor, "name"),
            HasModel = model is not null,
            OtherImplementations = [.. s_frameworks.Where(f => predictor[f] is JsonObject)],
            ModelFormat = model is null ? null : TypedStr(modelFormat, "name", "spec.predictor.model.modelFormat.name", errors),
            ModelFormatVersion = TypedStr(modelFormat, "version", "spec.predictor.model.modelFormat.version", errors),
            Runtime = TypedStr(model, "runtime", "spec.predictor.model.runtime", errors),
            StorageUri = TypedStr(model, "storageUri", "spec.predictor.model.storageUri", errors),
            ProtocolVersion = TypedStr(model, "protocolVersion", "spec.predictor.model.protocolVersion", errors),
            StorageParameters = StringMap(storage, "parameters", "spec.predictor.model.storage.parameters", errors),
            Container = Convert<V1Container>(model, "spec.predictor.model", errors) ?? new V1Container(),
            PodSpec = Convert<V1PodSpec>(predictor, "spec.predictor", errors) ?? new V1PodSpec(),
            MinReplicas = Int(predictor, "minReplicas", "spec.predictor.minReplicas", errors),
            MaxReplicas = Int(predictor, "maxReplicas", "spec.predictor.maxReplicas", errors) ?? 0,
            ScaleMetric = TypedStr(predictor, "scaleMetric", "spec.predictor.scaleMetric", errors),
            ScaleMetricType = TypedStr(predictor, "scaleMetricType", "spec.predictor.scaleMetricType", errors),
            ScaleTarget = Int(predictor, "scaleTarget", "spec.predictor.scaleTarget", errors),
            AutoScalingMetrics = ReadMetrics(autoScaling, errors),
            AutoScalingBehavior = Convert<V2HorizontalPodAutoscalerBehavior>(autoScaling?["behavior"] as JsonObject, "spec.predictor.autoScaling.behavior", errors),
            Labels = StringMap(predictor, "labels", "spec.predictor.labels", errors),
            Annotations = StringMap(predictor, "annotations", "spec.predictor.annotations", errors),
            DeploymentStrategy = Convert<V1DeploymentStrategy>(predictor["deploymentStrategy"] as JsonObject, "spec.predictor.deploymentStrategy", errors),
            TimeoutSeconds = Int(predictor, "timeout", "spec.predictor.timeout", errors),
        };
    }

    private static List<MetricSpec> ReadMetrics(JsonObject? autoScaling, List<FieldError> errors)
    {
        var list = new List<MetricSpec>();
        if (autoScaling?["metrics"] is not { } node)
        {
            return list;
        }

        if (node is not JsonArray metrics)
        {
            errors.Add(new FieldError("spec.predictor.autoScaling.metrics", "must be a list"));
            return list;
        }

        for (var i = 0; i < metrics.Count; i++)
        {
            var field = $"spec.predictor.autoScaling.metrics[{i}]";
            if (metrics[i] is not JsonObject m)
            {
                errors.Add(new FieldError(field, "must be an object"));
                continue;
            }

            var type = TypedStr(m, "type", field + ".type", errors) ?? "";
            var source = type switch
            {
                "Resource" => m["resource"] as JsonObject,
                "External" => m["external"] as JsonObject,
                "PodMetric" => m["podmetric"] as JsonObject,
                _ => null,
            };
            var target = source?["target"] as JsonObject;
            string? name = type switch
            {
                "Resource" => TypedStr(source, "name", field + ".resource.name", errors),
                // KServe's PodMetric names metrics through metricNames (or a query that is a bare metric name).
                "PodMetric" => FirstString(source?["metric"]?["metricNames"] as JsonArray)
                    ?? Str(source?["metric"] as JsonObject, "query"),
                "External" => Str(source?["metric"] as JsonObject, "query"),
                _ => null,
            };
            list.Add(new MetricSpec
            {
                Type = type,
                Name = name,
                TargetType = TypedStr(target, "type", field + ".target.type", errors),
                AverageUtilization = Int(target, "averageUtilization", field + ".target.averageUtilization", errors),
                AverageValue = Quantity(target, "averageValue"),
                Value = Quantity(target, "value"),
            });
        }

        return list;
    }

    private static T? Convert<T>(JsonObject? node, string field, List<FieldError> errors)
        where T : class
    {
        if (node is null)
        {
            return null;
        }

        try
        {
            return KubernetesJson.Deserialize<T>(node.ToJsonString());
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            errors.Add(new FieldError(field, $"cannot be read: {FirstLine(e.Message)}"));
            return null;
        }
    }

    private static string FirstLine(string message)
    {
        var nl = message.IndexOf('\n', StringComparison.Ordinal);
        return nl < 0 ? message : message[..nl];
    }

    private static string? FirstString(JsonArray? array) =>
        array is [JsonValue first, ..] && first.TryGetValue(out string? s) ? s : null;

    private static string? Str(JsonObject? obj, string name) =>
        obj?[name] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static string? TypedStr(JsonObject? obj, string name, string field, List<FieldError> errors)
    {
        var node = obj?[name];
        if (node is null)
        {
            return null;
        }

        if (node is JsonValue v && v.TryGetValue(out string? s))
        {
            return s;
        }

        errors.Add(new FieldError(field, "must be a string"));
        return null;
    }

    private static string? Quantity(JsonObject? obj, string name) => obj?[name] switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonValue v when v.TryGetValue(out long l) => l.ToString(CultureInfo.InvariantCulture),
        JsonValue v when v.TryGetValue(out double d) => d.ToString(CultureInfo.InvariantCulture),
        _ => null,
    };

    private static int? Int(JsonObject? obj, string name, string field, List<FieldError> errors)
    {
        var node = obj?[name];
        if (node is null)
        {
            return null;
        }

        if (node is JsonValue v)
        {
            if (v.TryGetValue(out int i))
            {
                return i;
            }

            if (v.TryGetValue(out long l) && l is >= int.MinValue and <= int.MaxValue)
            {
                return (int)l;
            }

            if (v.TryGetValue(out double d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue)
            {
                return (int)d;
            }
        }

        errors.Add(new FieldError(field, $"must be an integer, got {node.ToJsonString()}"));
        return null;
    }

    private static Dictionary<string, string> StringMap(JsonObject? obj, string name, string field, List<FieldError> errors)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        var node = obj?[name];
        if (node is null)
        {
            return map;
        }

        if (node is not JsonObject o)
        {
            errors.Add(new FieldError(field, "must be a map of strings"));
            return map;
        }

        foreach (var (k, v) in o)
        {
            if (v is JsonValue jv && jv.TryGetValue(out string? s))
            {
                map[k] = s;
            }
            else
            {
                errors.Add(new FieldError($"{field}.{k}", "must be a string"));
            }
        }

        return map;
    }
}
