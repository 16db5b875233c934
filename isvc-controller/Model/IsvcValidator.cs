using System.Text.RegularExpressions;

namespace KServe.Node.IsvcController.Model;

/// <summary>Why an InferenceService cannot be served, as a condition reason and a message naming the problem.</summary>
/// <param name="Reason">CamelCase condition reason.</param>
/// <param name="Message">What is wrong and what to do.</param>
/// <param name="RejectAtAdmission">True where KServe's validating webhook rejects the object, so ours does too.</param>
internal sealed record Problem(string Reason, string Message, bool RejectAtAdmission);

/// <summary>
/// Decides whether an InferenceService is ours and whether it is valid. Admission problems mirror KServe's
/// validating webhook (same rules, same messages); the others surface as conditions on reconcile.
/// </summary>
internal static partial class IsvcValidator
{
    public const string InvalidPredictorSpec = "InvalidPredictorSpec";
    public const string RuntimeNotRecognized = "RuntimeNotRecognized";
    public const string NoSupportingRuntime = "NoSupportingRuntime";
    public const string UnsupportedDeploymentMode = "UnsupportedDeploymentMode";
    public const string UnsupportedStorageUri = "UnsupportedStorageUri";

    // KServe's accepted storageUri prefixes (controller-side validation, spec §5.1).
    private static readonly string[] s_kserveSchemes =
    [
        "gs://", "s3://", "pvc://", "file://", "https://", "http://", "hdfs://", "webhdfs://", "oci://",
        "oci+native://", "oci+fetch://", "hf://",
    ];

    // What node-agent's download verb fetches, plus pvc:// which is mounted directly.
    internal static readonly string[] ServedSchemes = ["s3://", "gs://", "hf://", "https://", "http://", "pvc://"];

    private static readonly HashSet<string> s_autoscalerClasses = new(StringComparer.Ordinal) { "hpa", "keda", "external", "none" };
    private static readonly HashSet<string> s_scaleMetrics = new(StringComparer.Ordinal) { "cpu", "memory", "concurrency", "rps" };
    private static readonly HashSet<string> s_metricTypes = new(StringComparer.Ordinal) { "Utilization", "Value", "AverageValue" };

    /// <summary>True when this controller owns <paramref name="isvc"/> (architecture: InferenceService ownership).</summary>
    public static bool IsOurs(IsvcSpec isvc, IsvcControllerOptions options)
    {
        ArgumentNullException.ThrowIfNull(isvc);
        ArgumentNullException.ThrowIfNull(options);
        if (options.All)
        {
            return true;
        }

        var p = isvc.Predictor;
        if (!string.IsNullOrEmpty(p.Runtime))
        {
            return string.Equals(p.Runtime, options.RuntimeName, StringComparison.Ordinal);
        }

        return p.ModelFormat is { } f && options.ModelFormats.Contains(f, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Every problem with <paramref name="isvc"/>; empty when it can be served.</summary>
    public static List<Problem> Validate(IsvcSpec isvc, IReadOnlyList<FieldError> readErrors, IsvcControllerOptions options)
    {
        ArgumentNullException.ThrowIfNull(isvc);
        ArgumentNullException.ThrowIfNull(readErrors);
        ArgumentNullException.ThrowIfNull(options);
        var problems = readErrors.Select(e => new Problem(InvalidPredictorSpec, e.ToString(), true)).ToList();
        ValidateAdmission(isvc, problems);
        ValidateServing(isvc, options, problems);
        return problems;
    }

    // The checks KServe's validating webhook makes (and rejects on).
    private static void ValidateAdmission(IsvcSpec isvc, List<Problem> problems)
    {
        void Reject(string message) => problems.Add(new Problem(InvalidPredictorSpec, message, true));

        if (!IsvcNameRegex().IsMatch(isvc.Name))
        {
            Reject($"the InferenceService \"{isvc.Name}\" is invalid: a InferenceService name must consist of lower case alphanumeric characters or '-', and must start with alphabetical character. (e.g. \"my-name\" or \"abc-123\", regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
        }

        var p = isvc.Predictor;
        var implementations = (p.HasModel ? 1 : 0) + p.OtherImplementations.Count;
        if (implementations != 1)
        {
            Reject("exactly one of [model, " + string.Join(", ", p.OtherImplementations) + "] must be specified in PredictorSpec");
        }

        if (p.HasModel && string.IsNullOrEmpty(p.ModelFormat))
        {
            Reject("spec.predictor.model.modelFormat.name is required");
        }

        if (p.MinReplicas is < 0)
        {
            Reject("'MinReplicas' cannot be less than 0");
        }

        if (p.MaxReplicas < 0)
        {
            Reject("'MaxReplicas' cannot be less than 0");
        }

        if ((p.MinReplicas ?? Api.V1Beta1.InferenceServiceDefaults.MinReplicas) > p.MaxReplicas && p.MaxReplicas != 0)
        {
            Reject("'MinReplicas' cannot be greater than MaxReplicas");
        }

        if (p.StorageUri is { Length: > 0 } uri && uri.Contains("://", StringComparison.Ordinal)
            && !s_kserveSchemes.Any(s => uri.StartsWith(s, StringComparison.Ordinal)) && !AzureBlobRegex().IsMatch(uri))
        {
            Reject($"storageUri, must be one of: [{string.Join(", ", s_kserveSchemes)}] or match https://{{}}.blob.core.windows.net/{{}}/{{}} or be an absolute or relative local path. StorageUri [{uri}] is not supported");
        }

        if (isvc.Annotation(IsvcNames.AutoscalerClassAnnotation) is { } cls && !s_autoscalerClasses.Contains(cls))
        {
            Reject($"the InferenceService \"{isvc.Name}\" is invalid: Unknown autoscaler class [{cls}] (one of hpa, keda, external, none)");
        }

        if (p.ScaleMetric is { } metric && !s_scaleMetrics.Contains(metric))
        {
            Reject($"spec.predictor.scaleMetric: unsupported value \"{metric}\" (one of cpu, memory, concurrency, rps)");
        }

        if (p.ScaleMetricType is { } mt && !s_metricTypes.Contains(mt))
        {
            Reject($"spec.predictor.scaleMetricType: unsupported value \"{mt}\" (one of Utilization, Value, AverageValue)");
        }

        if (p.ScaleTarget is <= 0)
        {
            Reject("spec.predictor.scaleTarget must be greater than 0");
        }

        if (isvc.Annotation(IsvcNames.TargetUtilizationAnnotation) is { } target
            && (!int.TryParse(target, System.Globalization.CultureInfo.InvariantCulture, out var t) || t <= 0))
        {
            Reject($"annotation {IsvcNames.TargetUtilizationAnnotation} must be a positive integer, got \"{target}\"");
        }

        for (var i = 0; i < p.AutoScalingMetrics.Count; i++)
        {
            var m = p.AutoScalingMetrics[i];
            if (m.Type is not ("Resource" or "External" or "PodMetric"))
            {
                Reject($"spec.predictor.autoScaling.metrics[{i}].type: unsupported value \"{m.Type}\" (one of Resource, External, PodMetric)");
            }
            else if (m.Type == "Resource" && m.Name is not ("cpu" or "memory"))
            {
                Reject($"spec.predictor.autoScaling.metrics[{i}].resource.name: unsupported value \"{m.Name}\" (one of cpu, memory)");
            }
        }
    }

    // What this runtime can serve (reported as conditions; KServe would also accept these objects).
    private static void ValidateServing(IsvcSpec isvc, IsvcControllerOptions options, List<Problem> problems)
    {
        var p = isvc.Predictor;
        if (!string.IsNullOrEmpty(p.Runtime) && !string.Equals(p.Runtime, options.RuntimeName, StringComparison.Ordinal))
        {
            problems.Add(new Problem(RuntimeNotRecognized,
                $"ServingRuntime \"{p.Runtime}\" is not known to this controller; the runtime it serves is \"{options.RuntimeName}\"", false));
        }
        else if (string.IsNullOrEmpty(p.Runtime) && p.ModelFormat is { Length: > 0 } format
            && !options.ModelFormats.Contains(format, StringComparer.OrdinalIgnoreCase))
        {
            problems.Add(new Problem(NoSupportingRuntime,
                $"No runtime found to support predictor with model type: {format} (runtime \"{options.RuntimeName}\" supports {string.Join(", ", options.ModelFormats)})", false));
        }

        if (isvc.Annotation(IsvcNames.DeploymentModeAnnotation) is { } mode
            && mode is not ("Standard" or "RawDeployment"))
        {
            problems.Add(new Problem(UnsupportedDeploymentMode,
                $"deployment mode \"{mode}\" is not supported: this controller creates Standard (RawDeployment) resources only", false));
        }

        if (p.HasModel && string.IsNullOrEmpty(p.StorageUri))
        {
            problems.Add(new Problem(UnsupportedStorageUri, "spec.predictor.model.storageUri is required: llm-server loads the model from it", false));
        }
        else if (p.StorageUri is { Length: > 0 } uri && !ServedSchemes.Any(s => uri.StartsWith(s, StringComparison.Ordinal))
            && problems.All(x => !x.Message.StartsWith("storageUri,", StringComparison.Ordinal)))
        {
            problems.Add(new Problem(UnsupportedStorageUri,
                $"storageUri \"{uri}\" cannot be fetched by this runtime (supported: {string.Join(", ", ServedSchemes)})", false));
        }
    }

    [GeneratedRegex("^[a-z]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex IsvcNameRegex();

    [GeneratedRegex(@"^https://(.+?)\.blob\.core\.windows\.net/(.+)/(.+)$")]
    private static partial Regex AzureBlobRegex();
}
