using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace KServe.Node.CacheController;

/// <summary>
/// Settings of the cache-controller (configuration section <c>CacheController</c>; every property is also a flag, see
/// <see cref="CacheControllerApp.Cli"/>). The first group mirrors KServe's <c>localModel</c> settings in
/// <c>inferenceservice-config</c>, and the flags keep KServe's names (<c>--leader-elect</c>, <c>--metrics-addr</c>, ...).
/// </summary>
internal sealed class CacheControllerOptions
{
    public const string Section = "CacheController";

    [Description("namespace of the download Jobs and download PVCs (KServe's localModel.jobNamespace)")]
    [Required]
    [RegularExpression("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", ErrorMessage = "JobNamespace must be a DNS label")]
    public string JobNamespace { get; set; } = Api.KServeNames.DefaultJobNamespace;

    [Description("make no serving PV/PVCs and keep no InferenceService bookkeeping (KServe's localModel.disableVolumeManagement)")]
    public bool DisableVolumeManagement { get; set; }

    /// <summary>When the ConfigMap exists, its <c>localModel</c> JSON supplies the two settings above unless they are set here.</summary>
    [Description("namespace of KServe's inferenceservice-config, read for jobNamespace and disableVolumeManagement; empty: not read")]
    public string ConfigMapNamespace { get; set; } = "";

    [Description("name of KServe's configuration ConfigMap")]
    public string ConfigMapName { get; set; } = "inferenceservice-config";

    [Description("watch LLMInferenceServices (serving.kserve.io/v1alpha2): auto probes whether the kind is served")]
    public FeatureSwitch LlmInferenceServices { get; set; } = FeatureSwitch.Auto;

    [Description("concurrent reconciles per controller")]
    [Range(1, 64)]
    public int Workers { get; set; } = 4;

    [Description("kubeconfig file (default: the pod's service account, else KUBECONFIG, else ~/.kube/config)")]
    public string? Kubeconfig { get; set; }

    [Description("run only while holding the leader-election Lease")]
    public bool LeaderElect { get; set; }

    [Description("name of the leader-election Lease")]
    public string LeaseName { get; set; } = "kserve-local-model-manager-leader-lock";

    [Description("namespace of the leader-election Lease (default: $POD_NAMESPACE, else kserve-node)")]
    public string LeaseNamespace { get; set; } = Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : "kserve-node";

    [Description("address of /metrics, /healthz and /readyz as [HOST]:PORT (KServe's flag; port 0 = any free port)")]
    public string MetricsAddr { get; set; } = ":8081";

    [Description("a second address for /healthz and /readyz as [HOST]:PORT (KServe's flag); empty: only on --metrics-addr")]
    public string HealthProbeAddr { get; set; } = "";

    [Description("serve the admission webhooks")]
    public bool EnableWebhooks { get; set; } = true;

    [Description("HTTPS port of the admission webhooks (0: any free port)")]
    [Range(0, 65535)]
    public int WebhookPort { get; set; } = 9443;

    [Description("address the webhook server binds")]
    public string WebhookAddress { get; set; } = "0.0.0.0";

    [Description("Service in front of the webhook server (the certificate's DNS names)")]
    public string WebhookServiceName { get; set; } = "kserve-node-cache-controller-webhook";

    [Description("namespace of that Service (default: $POD_NAMESPACE, else kserve-node)")]
    public string WebhookServiceNamespace { get; set; } = Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : "kserve-node";

    [Description("extra DNS name or IP address for the serving certificate")]
    public IList<string> WebhookExtraNames { get; set; } = [];

    [Description("Secret (in --webhook-service-namespace) holding the serving certificate all replicas share: the first creates it, each serves and re-reads it, any renews it before expiry; empty: a certificate of this process only (one replica)")]
    public string WebhookCertSecret { get; set; } = "kserve-node-cache-controller-webhook-cert";

    [Description("seconds between reads of --webhook-cert-secret (another replica's renewal is served after at most this)")]
    [Range(1, 86400)]
    public int WebhookCertResyncSeconds { get; set; } = 60;

    [Description("ValidatingWebhookConfiguration whose caBundle is patched at start and whenever the certificate changes")]
    public IList<string> WebhookConfigurations { get; set; } = ["localmodelcache.serving.kserve.io"];

    [Description("PEM certificate to serve instead of the shared one (e.g. mounted from a cert-manager Secret; its caBundle is then cert-manager's to inject)")]
    public string? WebhookCertFile { get; set; }

    [Description("PEM key of --webhook-cert-file")]
    public string? WebhookKeyFile { get; set; }
}

internal enum FeatureSwitch
{
    Auto,
    Enabled,
    Disabled,
}
