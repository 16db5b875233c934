using k8s;
using KServe.Node.Agent.Cli;
using KServe.Node.Agent.Engine;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace KServe.Node.Agent.Kubernetes;

/// <summary>
/// Kubernetes mode (no verb): the node is <c>NODE_NAME</c>; only <c>LocalModelNode/{node}</c> is watched
/// (field selector), reconciled by <see cref="LocalModelNodeReconciler"/>, its status written by
/// <see cref="NodeStatusWriter"/>.
/// </summary>
internal static class KubernetesMode
{
    public static WebApplication Build(CommandLine cl, k8s.Kubernetes? client = null, string? nodeName = null)
    {
        cl.OnlyAllow("root", "http-port", "address");
        if (cl.Positional.Count > 0)
        {
            throw new UsageException($"unknown verb '{cl.Positional[0]}'; verbs: {string.Join(", ", CommandLine.Verbs)} (none = Kubernetes mode)");
        }
        var node = nodeName ?? Environment.GetEnvironmentVariable("NODE_NAME");
        if (string.IsNullOrWhiteSpace(node))
        {
            throw new UsageException("NODE_NAME is not set: Kubernetes mode takes its node from the downward API (fieldRef spec.nodeName); use 'standalone' without Kubernetes");
        }
        var root = Path.GetFullPath(cl.Get("root") ?? "/mnt/models");
        ResourceType.Register<LocalModelNode>(namespaced: false);
        ResourceType.Register<LocalModelNodeGroup>(namespaced: false);
        var builder = AgentHost.CreateBuilder(cl, root);
        builder.Services.AddSingleton(_ => client ?? new k8s.Kubernetes(KubernetesClientConfiguration.IsInCluster()
            ? KubernetesClientConfiguration.InClusterConfig()
            : KubernetesClientConfiguration.BuildConfigFromConfigFile(Environment.GetEnvironmentVariable("KUBECONFIG"))));
        builder.Services.AddSingleton<IKubernetes>(sp => sp.GetRequiredService<k8s.Kubernetes>());
        builder.Services.AddSingleton(new AgentNodeSettings
        {
            NodeName = node,
            PodNamespace = Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : "kserve",
        });
        builder.Services.AddSingleton<CredentialResolver>();
        builder.Services.AddSingleton<NodeStatusWriter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<NodeStatusWriter>());
        builder.Services.AddController<LocalModelNodeReconciler>("localmodelnode", b => b
            .For<LocalModelNode>(
                // Status-only updates (our own writes) do not need a pass; spec and annotation changes do, as in KServe.
                e => e.Type != ResourceEventType.Updated || e.OldObject is null
                    || e.Object.Metadata.Generation != e.OldObject.Metadata.Generation
                    || !SameAnnotations(e.Object.Metadata.Annotations, e.OldObject.Metadata.Annotations),
                new InformerOptions { FieldSelector = $"metadata.name={node}" })
            .WithWorkers(1));
        var app = builder.Build();
        AgentHost.MapEndpoints(app, "kubernetes", () => []);
        return app;
    }

    private static bool SameAnnotations(IDictionary<string, string>? a, IDictionary<string, string>? b) =>
        (a?.Count ?? 0) == (b?.Count ?? 0) && (a is null || a.All(kv => b!.TryGetValue(kv.Key, out var v) && v == kv.Value));
}
