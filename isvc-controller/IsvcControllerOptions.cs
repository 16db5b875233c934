using System.ComponentModel.DataAnnotations;

namespace KServe.Node.IsvcController;

/// <summary>
/// The controller's configuration: the llm-server "runtime" (what KServe keeps in a ServingRuntime), the
/// one-shot downloader, and ingress. Bound from the <c>IsvcController</c> configuration section.
/// </summary>
public sealed class IsvcControllerOptions
{
    public const string Section = "IsvcController";

    /// <summary>The runtime name an InferenceService selects with <c>spec.predictor.model.runtime</c>.</summary>
    [Required]
    public string RuntimeName { get; set; } = "kserve-node-llm";

    /// <summary>Model formats (<c>spec.predictor.model.modelFormat.name</c>) that select this runtime without a runtime name.</summary>
    [MinLength(1)]
    public List<string> ModelFormats { get; set; } = ["gguf"];

    /// <summary>Reconcile every InferenceService, whatever runtime it names (a cluster without KServe).</summary>
    public bool All { get; set; }

    /// <summary>The llm-server image.</summary>
    [Required]
    public string Image { get; set; } = "kserve-node/kserve-node:latest";

    /// <summary>The llm-server command in that image.</summary>
    public List<string> Command { get; set; } = ["/app/llm-server"];

    /// <summary>Runtime args before the generated ones; <c>{{.Name}}</c> becomes the InferenceService name.</summary>
    public List<string> Args { get; set; } = [];

    /// <summary>The HTTP port llm-server listens on (KServe's default 8080).</summary>
    [Range(1, 65535)]
    public int Port { get; set; } = 8080;

    /// <summary>GPU layers offloaded when the predictor requests a GPU (999 = all).</summary>
    [Range(1, 100000)]
    public int GpuLayers { get; set; } = 999;

    /// <summary>Size limit of the memory-backed <c>/dev/shm</c>; empty for none.</summary>
    public string? ShmSizeLimit { get; set; } = "1Gi";

    /// <summary>The image that runs <c>node-agent download URI DEST</c> as the init container for uncached models.</summary>
    [Required]
    public string DownloaderImage { get; set; } = "kserve-node/kserve-node:latest";

    /// <summary>The node-agent command in that image.</summary>
    public List<string> DownloaderCommand { get; set; } = ["/app/node-agent"];

    /// <summary>Ingress domain used in <c>status.url</c> and route host names (KServe's default).</summary>
    [Required]
    public string IngressDomain { get; set; } = "example.com";

    /// <summary>URL scheme of <c>status.url</c>.</summary>
    [RegularExpression("^https?$")]
    public string UrlScheme { get; set; } = "http";

    /// <summary>Create Gateway API HTTPRoutes (KServe's <c>ingress.enableGatewayApi</c>).</summary>
    public bool EnableGatewayApi { get; set; }

    /// <summary>The parent Gateway as <c>namespace/name</c> (KServe's <c>ingress.kserveIngressGateway</c>).</summary>
    [RegularExpression("^[a-z0-9.-]+/[a-z0-9.-]+$")]
    public string IngressGateway { get; set; } = "kserve/kserve-ingress-gateway";

    /// <summary>Request timeout of routes when the predictor sets none (KServe's 60 s).</summary>
    [Range(1, 86400)]
    public int DefaultTimeoutSeconds { get; set; } = 60;

    /// <summary>Use LocalModelCaches at all (KServe's <c>localModel.enabled</c>).</summary>
    public bool LocalModelEnabled { get; set; } = true;

    /// <summary>Plain HTTP port of health and metrics.</summary>
    [Range(1, 65535)]
    public int HttpPort { get; set; } = 8080;

    /// <summary>HTTPS port of the validating webhook (KServe's 9443); 0 turns the webhook listener off.</summary>
    [Range(0, 65535)]
    public int WebhookPort { get; set; } = 9443;

    /// <summary>The Service in front of the webhook (names in the self-signed certificate).</summary>
    [Required]
    public string WebhookServiceName { get; set; } = "kserve-node-isvc-controller-webhook";

    /// <summary>The ValidatingWebhookConfiguration whose caBundle the controller writes; empty to leave it to cert-manager.</summary>
    public string? WebhookConfigurationName { get; set; } = "kserve-node-isvc-controller";

    /// <summary>CPU target (%) of the HPA when the predictor sets none (KServe's 80).</summary>
    [Range(1, 1000)]
    public int DefaultCpuUtilization { get; set; } = 80;
}
