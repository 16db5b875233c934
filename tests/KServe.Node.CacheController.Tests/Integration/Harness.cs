using k8s;
using k8s.Models;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.CacheController.Controllers;
using KServe.Node.Runtime;
using KServe.Node.TestKit;
using KServe.Node.TestKit.ApiServer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KServe.Node.CacheController.Tests.Integration;

/// <summary>
/// One test API server (real HTTP on loopback) with KServe's CRDs, and the cache-controller process built as in
/// production, pointed at it. The controller's requests carry the user agent <see cref="ControllerAgent"/>.
/// </summary>
internal sealed class Harness : IAsyncDisposable
{
    public const string ControllerAgent = "cache-controller";
    public const string JobNamespace = "kserve-localmodel-jobs";

    private readonly List<IAsyncDisposable> _observers = [];

    private Harness(TestApiServer server, Kubernetes client)
    {
        Server = server;
        Client = client;
    }

    public TestApiServer Server { get; }

    /// <summary>The test's own client (user agent <c>test</c>).</summary>
    public Kubernetes Client { get; }

    public WebApplication App { get; private set; } = null!;

    public ControllerSet Controllers => App.Services.GetRequiredService<ControllerSet>();

    public Observer<LocalModelCache> Caches { get; private set; } = null!;
    public Observer<LocalModelNamespaceCache> NamespaceCaches { get; private set; } = null!;
    public Observer<LocalModelNode> Lmns { get; private set; } = null!;
    public Observer<V1PersistentVolume> Pvs { get; private set; } = null!;
    public Observer<V1PersistentVolumeClaim> Pvcs { get; private set; } = null!;
    public Observer<V1Node> Nodes { get; private set; } = null!;
    public Observer<LocalModelNodeGroup> Groups { get; private set; } = null!;

    public ResourceClient<T> For<T>() where T : class, IKubernetesObject<V1ObjectMeta> => new(Client);

    private string[] _args = [];

    /// <summary>Starts another replica with the same settings against the same API server (the caller stops and disposes it).</summary>
    public async Task<WebApplication> StartReplicaAsync()
    {
        var app = CacheControllerApp.Build(_args, Server.CreateClient(ControllerAgent));
        await app.StartAsync();
        return app;
    }

    /// <summary>HTTPS base address of the webhook server.</summary>
    public Uri WebhookBase => Addresses().First(a => a.Scheme == "https");

    /// <summary>HTTP base address of health and metrics.</summary>
    public Uri MetricsBase => Addresses().First(a => a.Scheme == "http");

    private IEnumerable<Uri> Addresses() =>
        App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal)));

    public static async Task<Harness> StartAsync(IDictionary<string, string>? settings = null, Func<Harness, Task>? beforeController = null)
    {
        CacheControllerApp.RegisterKinds();
        var server = await TestApiServer.StartAsync();
        await server.ApplyCrdsFromDirectoryAsync(Path.Combine(RepoPaths.Root, "daemonset", "crds"));
        await server.ApplyCrdsFromDirectoryAsync(Path.Combine(RepoPaths.Root, "daemonset", "crds", "optional"));
        await server.ApplyCrdsFromDirectoryAsync(Path.Combine(AppContext.BaseDirectory, "Integration", "crds"));
        var h = new Harness(server, server.CreateClient("test"));
        await h.CreateNamespaceAsync(JobNamespace);
        await h.CreateNamespaceAsync("default");
        // The controllers' namespace: the shared webhook certificate's Secret lives there.
        await h.CreateNamespaceAsync("kserve-node");
        if (beforeController is not null)
        {
            await beforeController(h);
        }

        var args = new Dictionary<string, string>
        {
            ["CacheController:JobNamespace"] = JobNamespace,
            ["CacheController:WebhookPort"] = "0",
            ["CacheController:WebhookAddress"] = "127.0.0.1",
            ["CacheController:MetricsAddr"] = "127.0.0.1:0",
            ["CacheController:WebhookExtraNames:0"] = "127.0.0.1",
            ["CacheController:Workers"] = "2",
            ["CacheController:LlmInferenceServices"] = "Enabled",
            ["Logging:LogLevel:Default"] = Environment.GetEnvironmentVariable("CACHECTL_TEST_LOG") ?? "Warning",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string>())
        {
            args[k] = v;
        }

        var logFile = Environment.GetEnvironmentVariable("CACHECTL_TEST_LOGFILE");
        h._args = [.. args.Select(kv => $"--{kv.Key}={kv.Value}")];
        h.App = CacheControllerApp.Build(h._args, server.CreateClient(ControllerAgent),
            b =>
            {
                if (!string.IsNullOrEmpty(logFile))
                {
                    b.Logging.AddProvider(new FileLog(logFile));
                }
            });
        await h.App.StartAsync();
        await Task.WhenAll(h.Controllers.All.Select(c => c.Started)).WaitAsync(TimeSpan.FromSeconds(30));
        h.Caches = await h.Observe<LocalModelCache>();
        h.NamespaceCaches = await h.Observe<LocalModelNamespaceCache>();
        h.Lmns = await h.Observe<LocalModelNode>();
        h.Pvs = await h.Observe<V1PersistentVolume>();
        h.Pvcs = await h.Observe<V1PersistentVolumeClaim>();
        h.Nodes = await h.Observe<V1Node>();
        h.Groups = await h.Observe<LocalModelNodeGroup>();
        return h;
    }

    private async Task<Observer<T>> Observe<T>() where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var o = await Observer<T>.StartAsync(Client);
        _observers.Add(o);
        return o;
    }

    public Task CreateNamespaceAsync(string name) =>
        IgnoreExists(For<V1Namespace>().CreateAsync(new V1Namespace { ApiVersion = "v1", Kind = "Namespace", Metadata = new V1ObjectMeta { Name = name } }));

    private static async Task IgnoreExists(Task t)
    {
        try
        {
            await t;
        }
        catch (KubernetesApiException e) when (e.IsAlreadyExists)
        {
        }
    }

    // ---- fixtures of KServe's controller envtest (spec §6.1) ----

    /// <summary>
    /// KServe's fixture group (hostPath /models, class standard, 2Gi volumes). Its storage limit is 1Ti rather than the
    /// fixture's 2Gi: this controller enforces the limit, and KServe's 123Gi fixture model would not fit.
    /// </summary>
    public static LocalModelNodeGroup Group(string name, string instanceType, string storageLimit = "1Ti") => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new LocalModelNodeGroupSpec
        {
            StorageLimit = new ResourceQuantity(storageLimit),
            PersistentVolumeSpec = new V1PersistentVolumeSpec
            {
                AccessModes = ["ReadWriteOnce"],
                VolumeMode = "Filesystem",
                Capacity = new Dictionary<string, ResourceQuantity> { ["storage"] = new("2Gi") },
                HostPath = new V1HostPathVolumeSource { Path = "/models", Type = "" },
                PersistentVolumeReclaimPolicy = "Delete",
                StorageClassName = "standard",
                NodeAffinity = new V1VolumeNodeAffinity
                {
                    Required = new V1NodeSelector
                    {
                        NodeSelectorTerms = [new V1NodeSelectorTerm
                        {
                            MatchExpressions = [new V1NodeSelectorRequirement
                            {
                                Key = "node.kubernetes.io/instance-type", OperatorProperty = "In", Values = [instanceType],
                            }],
                        }],
                    },
                },
            },
            PersistentVolumeClaimSpec = new V1PersistentVolumeClaimSpec
            {
                AccessModes = ["ReadWriteOnce"],
                Resources = new V1VolumeResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["storage"] = new("2Gi") } },
                StorageClassName = "standard",
                VolumeMode = "Filesystem",
            },
        },
    };

    public static LocalModelCache Cache(string name, string[] groups, string uri = "s3://mybucket/mymodel", string size = "123Gi") => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new LocalModelCacheSpec { SourceModelUri = uri, ModelSize = new ResourceQuantity(size), NodeGroups = groups },
    };

    public static LocalModelNamespaceCache NamespaceCache(string ns, string name, string[] groups, string uri = "s3://mybucket/mymodel", string size = "123Gi") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
        Spec = new LocalModelCacheSpec { SourceModelUri = uri, ModelSize = new ResourceQuantity(size), NodeGroups = groups },
    };

    public async Task<V1Node> CreateNodeAsync(string name, string instanceType, bool ready = true)
    {
        var node = new V1Node
        {
            ApiVersion = "v1",
            Kind = "Node",
            Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["node.kubernetes.io/instance-type"] = instanceType } },
            Status = new V1NodeStatus { Conditions = [new V1NodeCondition { Type = "Ready", Status = ready ? "True" : "False" }] },
        };
        var created = await For<V1Node>().CreateAsync(node);
        if (!NodeSelectorReady(created, ready))
        {
            // Status is a subresource: set it the way the kubelet does.
            created.Status = node.Status;
            created = await For<V1Node>().ReplaceStatusAsync(created);
        }

        return created;
    }

    private static bool NodeSelectorReady(V1Node n, bool ready) =>
        n.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == (ready ? "True" : "False")) == true;

    public async Task SetNodeReadyAsync(string name, bool ready)
    {
        var node = await For<V1Node>().GetAsync(ObjectKey.Cluster(name)) ?? throw new InvalidOperationException(name);
        node.Status ??= new V1NodeStatus();
        node.Status.Conditions = [new V1NodeCondition { Type = "Ready", Status = ready ? "True" : "False" }];
        await For<V1Node>().ReplaceStatusAsync(node);
    }

    /// <summary>Plays the node agent: sets <c>status.modelStatus</c> of a LocalModelNode.</summary>
    public async Task SetModelStatusAsync(string node, string statusKey, string modelStatus)
    {
        var client = For<LocalModelNode>();
        for (var attempt = 0; ; attempt++)
        {
            var lmn = await client.GetAsync(ObjectKey.Cluster(node)) ?? throw new InvalidOperationException($"LocalModelNode {node} missing");
            lmn.Status ??= new LocalModelNodeStatus();
            lmn.Status.ModelStatus ??= new Dictionary<string, string>();
            lmn.Status.ModelStatus[statusKey] = modelStatus;
            try
            {
                await client.ReplaceStatusAsync(lmn);
                return;
            }
            catch (KubernetesApiException e) when (e.IsConflict && attempt < 5)
            {
            }
        }
    }

    public static bool HasEntry(LocalModelNode n, string modelName, string? ns = null, string? group = null) =>
        n.Spec?.LocalModels?.Any(m => m.ModelName == modelName && (m.Namespace ?? "") == (ns ?? "") && (group is null || m.NodeGroup == group)) == true;

    public async ValueTask DisposeAsync()
    {
        foreach (var o in _observers)
        {
            await o.DisposeAsync();
        }

        if (App is not null)
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }

        await Server.DisposeAsync();
    }
}
