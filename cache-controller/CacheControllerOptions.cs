using System.ComponentModel.DataAnnotations;

namespace KServe.Node.CacheController;

/// <summary>
/// Settings of the cache-controller (configuration section <c>CacheController</c>). The first group mirrors KServe's
/// <c>localModel</c> settings in <c>inferenceservice-config</c> that the controller reads.
/// </summary>
internal sealed class CacheControllerOptions
{
    public const string Section = "CacheController";

    /// <summary>Namespace of the download Jobs and download PVCs (KServe's <c>localModel.jobNamespace</c>).</summary>
    [Required]
    [RegularExpression("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", ErrorMessage = "JobNamespace must be a DNS label")]
    public string JobNamespace { get; set; } = Api.KServeNames.DefaultJobNamespace;

    /// <summary>Skip serving PV/PVCs and InferenceService bookkeeping (KServe's <c>localModel.disableVolumeManagement</c>).</summary>
    public bool DisableVolumeManagement { get; set; }

    /// <summary>
    /// Where KServe's <c>inferenceservice-config</c> lives; when it exists, its <c>localModel</c> JSON supplies
    /// <c>jobNamespace</c> and <c>disableVolumeManagement</c> unless they are set here explicitly. Empty: not read.
    /// </summary>
    public string ConfigMapNamespace { get; set; } = "";

    /// <summary>Name of KServe's configuration ConfigMap.</summary>
    public string ConfigMapName { get; set; } = "inferenceservice-config";

    /// <summary>Watch LLMInferenceServices (<c>serving.kserve.io/v1alpha2</c>): Auto probes whether the kind is served.</summary>
    public FeatureSwitch LlmInferenceServices { get; set; } = FeatureSwitch.Auto;

    /// <summary>Concurrent reconciles per controller.</summary>
    [Range(1, 64)]
    public int Workers { get; set; } = 4;

    /// <summary>Run only while holding the Lease <see cref="LeaseName"/> in <see cref="LeaseNamespace"/>.</summary>
    public bool LeaderElect { get; set; }

    public string LeaseName { get; set; } = "kserve-local-model-manager-leader-lock";

    public string LeaseNamespace { get; set; } = Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : "kserve-node";

    /// <summary>HTTPS port of the admission webhooks (0: ephemeral, for tests).</summary>
    [Range(0, 65535)]
    public int WebhookPort { get; set; } = 9443;

    /// <summary>Address the webhook server binds.</summary>
    public string WebhookAddress { get; set; } = "0.0.0.0";

    /// <summary>HTTP port of /healthz, /readyz and /metrics (0: ephemeral).</summary>
    [Range(0, 65535)]
    public int MetricsPort { get; set; } = 8080;

    public string MetricsAddress { get; set; } = "0.0.0.0";

    /// <summary>Serve the admission webhooks.</summary>
    public bool EnableWebhooks { get; set; } = true;

    /// <summary>Service in front of the webhook server (the certificate's DNS names).</summary>
    public string WebhookServiceName { get; set; } = "kserve-node-cache-controller-webhook";

    public string WebhookServiceNamespace { get; set; } = Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : "kserve-node";

    /// <summary>Extra DNS names or IP addresses for the serving certificate.</summary>
    public IList<string> WebhookExtraNames { get; set; } = [];

    /// <summary>ValidatingWebhookConfigurations whose caBundle is patched at start (empty: none).</summary>
    public IList<string> WebhookConfigurations { get; set; } = ["localmodelcache.serving.kserve.io"];

    /// <summary>PEM certificate and key files to serve instead of a generated certificate (e.g. from cert-manager).</summary>
    public string? WebhookCertFile { get; set; }

    public string? WebhookKeyFile { get; set; }
}

internal enum FeatureSwitch
{
    Auto,
    Enabled,
    Disabled,
}
