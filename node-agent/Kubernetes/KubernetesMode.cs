using k8s;
using KServe.Node.Agent.Engine;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Hosting.Cli;
using KServe.Node.Runtime;
using Microsoft.Extensions.Configuration;
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
    /// <param name="cli">The parsed command line.</param>
    /// <param name="client">Replaces the kubeconfig's client (tests point it at the test API server).</param>
    /// <param name="nodeName">Replaces --node-name / NODE_NAME (tests).</param>
    public static WebApplication Build(CliResult cli, k8s.Kubernetes? client = null, string? nodeName = null)
    {
        var builder = AgentHost.CreateBuilder(cli, "0.0.0.0", out _);
        var kube = builder.Configuration.GetSection(KubernetesOptions.Section).Get<KubernetesOptions>() ?? new KubernetesOptions();
        var node = nodeName ?? kube.NodeName;
        if (string.IsNullOrWhiteSpace(node))
        {
            throw new CliException("no node name: Kubernetes mode takes it from NODE_NAME (the downward API's spec.nodeName) or --node-name; use 'node-agent standalone' without Kubernetes");
        }
        if (client is null)
        {
            client = KubeConnection.TryConnect(kube.Kubeconfig, TimeSpan.FromSeconds(10), out var c, out var problem) ? c! : throw new StartupException(problem);
        }
        ResourceType.Register<LocalModelNode>(namespaced: false);
        ResourceType.Register<LocalModelNodeGroup>(namespaced: false);
        builder.Services.AddSingleton(client);
        builder.Services.AddSingleton<IKubernetes>(sp => sp.GetRequiredService<k8s.Kubernetes>());
        var settings = new AgentNodeSettings { NodeName = node, PodNamespace = kube.PodNamespace };
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton<CredentialResolver>();
        builder.Services.AddSingleton<NodeStatusWriter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<NodeStatusWriter>());
        builder.Services.AddController<LocalModelNodeReconciler>("localmodelnode", b => b
            .For<LocalModelNode>(
                // Status-only updates (our own writes) do not need a pass; spec and annotation changes do, as in KServe.
                e => e.Type != ResourceEventType.Updated || e.OldObject is null
                    || e.Object.Metadata.Generation != e.OldObject.Metadata.Generation
                    || !SameAnnotations(e.Object.Metadata.Annotations, e.OldObject.Metadata.Annotations),
                settings.LocalModelNodeInformer)
            .WithWorkers(1));
        var app = builder.Build();
        AgentHost.MapEndpoints(app, "kubernetes", () => []);
        return app;
    }

    private static bool SameAnnotations(IDictionary<string, string>? a, IDictionary<string, string>? b) =>
        (a?.Count ?? 0) == (b?.Count ?? 0) && (a is null || a.All(kv => b!.TryGetValue(kv.Key, out var v) && v == kv.Value));
}
