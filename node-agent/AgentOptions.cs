using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace KServe.Node.Agent;

/// <summary>Where the agent keeps the cache and serves /status, /metrics and health (section <c>Agent</c>).</summary>
internal sealed class AgentOptions
{
    public const string Section = "Agent";

    [Description("cache root: models/, .staging/ and .state/ live under it")]
    public string Root { get; set; } = "/mnt/models";

    [Description("HTTP port of /status, /metrics, /healthz and /readyz (0: any free port)")]
    [Range(0, 65535)]
    public int HttpPort { get; set; } = 8090;

    [Description("address that port binds (default: 0.0.0.0 in Kubernetes mode, 127.0.0.1 standalone)")]
    public string? Address { get; set; }
}

/// <summary>Kubernetes mode (section <c>Kubernetes</c>).</summary>
internal sealed class KubernetesOptions
{
    public const string Section = "Kubernetes";

    [Description("this node's name, whose LocalModelNode the agent reconciles (default: $NODE_NAME from the downward API)")]
    public string NodeName { get; set; } = Environment.GetEnvironmentVariable("NODE_NAME") ?? "";

    [Description("namespace of the agent and of KServe's inferenceservice-config (default: $POD_NAMESPACE, else kserve)")]
    public string PodNamespace { get; set; } = Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : "kserve";

    [Description("kubeconfig file (default: the pod's service account, else KUBECONFIG, else ~/.kube/config)")]
    public string? Kubeconfig { get; set; }
}

/// <summary>Standalone mode (section <c>Standalone</c>).</summary>
internal sealed class StandaloneOptions
{
    public const string Section = "Standalone";

    [Description("folder of LocalModelCache YAML files (watched)")]
    public string ConfigDir { get; set; } = "";

    [Description("the most the cache may hold, beside any storageLimit in the config folder")]
    public long? StorageLimitBytes { get; set; }
}
