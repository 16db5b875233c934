using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace KServe.Node.IsvcController;

/// <summary>
/// The controller's configuration: the llm-server "runtime" (what KServe keeps in a ServingRuntime), the
/// one-shot downloader, and ingress. Bound from the <c>IsvcController</c> configuration section.
/// </summary>
public sealed class IsvcControllerOptions
{
    public const string Section = "IsvcController";

    [Description("the runtime name an InferenceService selects with spec.predictor.model.runtime")]
    [Required]
    public string RuntimeName { get; set; } = "kserve-node-llm";

    [Description("model format (spec.predictor.model.modelFormat.name) that selects this runtime without a runtime name")]
    [MinLength(1)]
    public List<string> ModelFormats { get; set; } = ["gguf"];

    [Description("reconcile every InferenceService, whatever runtime it names (a cluster without KServe)")]
    public bool All { get; set; }

    [Description("the llm-server image")]
    [Required]
    public string Image { get; set; } = "kserve-node/kserve-node:latest";

    [Description("the llm-server command in that image")]
    public List<string> Command { get; set; } = ["/app/llm-server"];

    [Description("runtime argument placed before the generated ones; {{.Name}} becomes the InferenceService name")]
    public List<string> Args { get; set; } = [];

    [Description("the HTTP port llm-server listens on in its pods (KServe's 8080)")]
    [Range(1, 65535)]
    public int Port { get; set; } = 8080;

    [Description("GPU layers offloaded when the predictor requests a GPU (999 = all)")]
    [Range(1, 100000)]
    public int GpuLayers { get; set; } = 999;

    [Description("size limit of the memory-backed /dev/shm; empty for none")]
    public string? ShmSizeLimit { get; set; } = "1Gi";

    [Description("the image that runs 'node-agent download URI DEST' as the init container for uncached models")]
    [Required]
    public string DownloaderImage { get; set; } = "kserve-node/kserve-node:latest";

    [Description("the node-agent command in that image")]
    public List<string> DownloaderCommand { get; set; } = ["/app/node-agent"];

    [Description("ingress domain of status.url and route host names (KServe's default)")]
    [Required]
    public string IngressDomain { get; set; } = "example.com";

    [Description("URL scheme of status.url: http or https")]
    [RegularExpression("^https?$")]
    public string UrlScheme { get; set; } = "http";

    [Description("create Gateway API HTTPRoutes (KServe's ingress.enableGatewayApi)")]
    public bool EnableGatewayApi { get; set; }

    [Description("with Gateway API off, create no networking.k8s.io/v1 Ingress either (KServe's ingress.disableIngressCreation)")]
    public bool DisableIngressCreation { get; set; }

    [Description("ingressClassName of the Ingress (KServe's ingress.ingressClassName); empty: the cluster's default class")]
    public string? IngressClassName { get; set; }

    [Description("the parent Gateway as namespace/name (KServe's ingress.kserveIngressGateway)")]
    [RegularExpression("^[a-z0-9.-]+/[a-z0-9.-]+$")]
    public string IngressGateway { get; set; } = "kserve/kserve-ingress-gateway";

    [Description("request timeout of routes when the predictor sets none (KServe's 60 s)")]
    [Range(1, 86400)]
    public int DefaultTimeoutSeconds { get; set; } = 60;

    [Description("use LocalModelCaches at all (KServe's localModel.enabled)")]
    public bool LocalModelEnabled { get; set; } = true;

    [Description("write KServe's localmodel label and annotations on every InferenceService that matches a cache, whatever its runtime (as KServe's webhook does), so the cache-controller makes its serving PVC and lists it; only ours are deployed. Turn off beside KServe, whose webhook writes them")]
    public bool LabelAllConsumers { get; set; } = true;

    [Description("HTTPS port of the validating webhook; 0 turns the webhook listener off")]
    [Range(0, 65535)]
    public int WebhookPort { get; set; } = 9444;

    [Description("the Service in front of the webhook (names in the self-signed certificate)")]
    [Required]
    public string WebhookServiceName { get; set; } = "kserve-node-isvc-controller-webhook";

    [Description("Secret (in the pod's namespace) holding the serving certificate all replicas share: the first creates it, each serves and re-reads it, any renews it before expiry; empty: a certificate of this process only (one replica)")]
    public string WebhookCertSecret { get; set; } = "kserve-node-isvc-controller-webhook-cert";

    [Description("PEM certificate to serve instead of the shared one (e.g. mounted from a cert-manager Secret; its caBundle is then cert-manager's to inject)")]
    public string? WebhookCertFile { get; set; }

    [Description("PEM key of --webhook-cert-file")]
    public string? WebhookKeyFile { get; set; }

    [Description("seconds between reads of --webhook-cert-secret (another replica's renewal is served after at most this)")]
    [Range(1, 86400)]
    public int WebhookCertResyncSeconds { get; set; } = 60;

    [Description("the ValidatingWebhookConfiguration whose caBundle the controller writes (at start and whenever the certificate changes); empty to leave it to cert-manager")]
    public string? WebhookConfigurationName { get; set; } = "kserve-node-isvc-controller";

    [Description("kubeconfig file (default: the pod's service account, else KUBECONFIG, else ~/.kube/config)")]
    public string? Kubeconfig { get; set; }

    [Description("run only while holding the leader-election Lease")]
    public bool LeaderElect { get; set; }

    [Description("name of the leader-election Lease")]
    public string LeaseName { get; set; } = "kserve-node-isvc-controller";

    [Description("namespace of the leader-election Lease and of the webhook Service (default: $POD_NAMESPACE, else kserve-node)")]
    public string PodNamespace { get; set; } = Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : "kserve-node";

    [Description("address of /metrics, /healthz and /readyz as [HOST]:PORT (KServe's flag; port 0 = any free port)")]
    public string MetricsAddr { get; set; } = ":8082";

    [Description("a second address for /healthz and /readyz as [HOST]:PORT (KServe's flag); empty: only on --metrics-addr")]
    public string HealthProbeAddr { get; set; } = "";

    [Description("CPU target (%) of the HPA when the predictor sets none (KServe's 80)")]
    [Range(1, 1000)]
    public int DefaultCpuUtilization { get; set; } = 80;
}
