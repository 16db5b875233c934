using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;
using KServe.Node.IsvcController.Resources;
using KServe.Node.Runtime;
using KServe.Node.TestKit;
using KServe.Node.TestKit.ApiServer;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.IsvcController.Tests;

/// <summary>
/// The test API server with the CRDs applied, a namespace, and the InferenceService controller running in-process
/// against it over real HTTP. Waits are on watch events with timeouts, never sleeps.
/// </summary>
internal sealed class IsvcCluster : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    public const string Ns = "team-a";

    /// <summary>The user agent of the controller's requests.</summary>
    public const string ControllerAgent = "isvc-controller-under-test";

    private readonly SharedInformerFactory _controllerInformers;
    private readonly SharedInformerFactory _observer;
    private readonly Controller _controller;
    private readonly CancellationTokenSource _stop = new();

    private IsvcCluster(TestApiServer server, Kubernetes client, SharedInformerFactory controllerInformers, Controller controller)
    {
        Server = server;
        Client = client;
        _controllerInformers = controllerInformers;
        _controller = controller;
        _observer = new SharedInformerFactory(client);
    }

    // The shipped CRDs (LocalModel* and the optional InferenceService one), without the kustomizations beside them.
    internal static readonly Lazy<string> CrdDirectory = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("isvc-crds-").FullName;
        var crds = Path.Combine(RepoPaths.Root, "daemonset", "crds");
        foreach (var file in Directory.GetFiles(crds, "serving.kserve.io_*.yaml").Concat(Directory.GetFiles(Path.Combine(crds, "optional"), "serving.kserve.io_*.yaml")))
        {
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        }

        return dir;
    });

    public TestApiServer Server { get; }
    public Kubernetes Client { get; }

    public static async Task<IsvcCluster> StartAsync(Action<IsvcControllerOptions>? configure = null, bool startController = true)
    {
        var server = await TestApiServer.StartAsync();
        try
        {
            await server.ApplyCrdsFromDirectoryAsync(CrdDirectory.Value);
            var client = server.CreateClient("isvc-controller");
            await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = Ns } });

            var options = new IsvcControllerOptions();
            configure?.Invoke(options);
            // The controller has a client of its own, so that the requests it makes can be told from the test's.
            var controllerClient = server.CreateClient(ControllerAgent);
            var informers = new SharedInformerFactory(controllerClient);
            // One worker: keys are taken in the order their events arrived, which some tests rely on.
            var controller = IsvcControllerSetup.Build(
                informers, options, new EventRecorder(controllerClient, "isvc-controller"), TimeProvider.System, NullLoggerFactory.Instance, workers: 1);
            var cluster = new IsvcCluster(server, client, informers, controller);
            if (startController)
            {
                await controller.StartAsync(cluster._stop.Token);
            }

            return cluster;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public ResourceClient<T> ClientFor<T>()
        where T : class, IKubernetesObject<V1ObjectMeta> => new(Client);

    /// <summary>Creates an InferenceService from raw JSON (no typed model in between: what the user wrote is what is sent).</summary>
    public Task CreateIsvcAsync(JsonObject isvc) =>
        Client.CustomObjects.CreateNamespacedCustomObjectAsync(isvc, "serving.kserve.io", "v1beta1", Ns, "inferenceservices");

    /// <summary>The raw JSON of an InferenceService as the server stores it.</summary>
    public async Task<JsonObject> GetIsvcJsonAsync(string name)
    {
        var obj = await Client.CustomObjects.GetNamespacedCustomObjectAsync("serving.kserve.io", "v1beta1", Ns, "inferenceservices", name);
        return JsonNode.Parse(KubernetesJson.Serialize(obj))!.AsObject();
    }

    public async Task<LocalModelCache> CreateCacheAsync(string name, string uri, string[] groups, Dictionary<string, string>? nodeStatus = null)
    {
        var caches = ClientFor<LocalModelCache>();
        var created = await caches.CreateAsync(new LocalModelCache
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new LocalModelCacheSpec { SourceModelUri = uri, NodeGroups = groups, ModelSize = new ResourceQuantity("1Gi") },
        });
        return nodeStatus is null ? created : await SetCacheStatusAsync(name, nodeStatus);
    }

    /// <summary>Writes what the cache-controller writes: the cache's per-node status and copies.</summary>
    public async Task<LocalModelCache> SetCacheStatusAsync(string name, Dictionary<string, string> nodeStatus)
    {
        var caches = ClientFor<LocalModelCache>();
        var current = (await caches.GetAsync(ObjectKey.Cluster(name)))!;
        current.Status ??= new LocalModelCacheStatus();
        current.Status.NodeStatus = nodeStatus;
        current.Status.Copies = ModelCopies.FromNodeStatus(nodeStatus);
        return await caches.ReplaceStatusAsync(current);
    }

    /// <summary>A Node, and the LocalModelNode entry of <paramref name="cache"/> with the agent's progress report.</summary>
    public async Task AddNodeAsync(string node, LocalModelCache cache, string group, bool holdsModel, string modelStatus, ModelProgress? progress = null)
    {
        var label = Api.PlacementLabels.ForUri(cache.Spec.SourceModelUri);
        await Client.CoreV1.CreateNodeAsync(new V1Node
        {
            Metadata = new V1ObjectMeta
            {
                Name = node,
                Labels = holdsModel ? new Dictionary<string, string> { [label] = "true" } : new Dictionary<string, string>(),
            },
        });
        var lmns = ClientFor<LocalModelNode>();
        await lmns.CreateAsync(new LocalModelNode
        {
            Metadata = new V1ObjectMeta { Name = node },
            Spec = new LocalModelNodeSpec
            {
                LocalModels = [new LocalModelInfo { ModelName = cache.Metadata.Name, SourceModelUri = cache.Spec.SourceModelUri, NodeGroup = group }],
            },
        });
        var created = (await lmns.GetAsync(ObjectKey.Cluster(node)))!;
        created.Status = new LocalModelNodeStatus
        {
            ModelStatus = new Dictionary<string, string> { [cache.Metadata.Name] = modelStatus },
            ModelProgress = progress is null ? null : new Dictionary<string, ModelProgress> { [cache.Metadata.Name] = progress },
        };
        await lmns.ReplaceStatusAsync(created);
    }

    /// <summary>What the cache-controller does when a node finishes: the placement label on the Node.</summary>
    public async Task LabelNodeAsync(string node, string sourceUri)
    {
        var patch = new JsonObject { ["metadata"] = new JsonObject { ["labels"] = new JsonObject { [Api.PlacementLabels.ForUri(sourceUri)] = "true" } } };
        await ClientFor<V1Node>().PatchAsync(ObjectKey.Cluster(node), PatchKind.Merge, patch.ToJsonString());
    }

    /// <summary>Waits until the object satisfies <paramref name="predicate"/>, on watch events.</summary>
    public async Task<T> WaitForAsync<T>(ObjectKey key, Func<T, bool> predicate, string what)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var informer = _observer.Get<T>();
        informer.Start();
        await informer.WaitForSyncAsync().WaitAsync(Timeout);
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var handler = informer.AddEventHandler(e =>
        {
            if (e.Type != ResourceEventType.Deleted && ObjectKey.From(e.Object) == key && predicate(e.Object))
            {
                done.TrySetResult(e.Object);
            }
        });
        if (informer.Get(key) is { } current && predicate(current))
        {
            return current;
        }

        try
        {
            return await done.Task.WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            var last = informer.Get(key);
            throw new TimeoutException($"{what}: not within {Timeout}; last seen: {(last is null ? "(none)" : KubernetesJson.Serialize(last))}");
        }
    }

    /// <summary>Waits until the object is gone, on watch events.</summary>
    public async Task WaitGoneAsync<T>(ObjectKey key, string what)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var informer = _observer.Get<T>();
        informer.Start();
        await informer.WaitForSyncAsync().WaitAsync(Timeout);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var handler = informer.AddEventHandler(e =>
        {
            if (e.Type == ResourceEventType.Deleted && ObjectKey.From(e.Object) == key)
            {
                done.TrySetResult();
            }
        });
        if (informer.Get(key) is null)
        {
            return;
        }

        try
        {
            await done.Task.WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{what}: still there after {Timeout}");
        }
    }

    /// <summary>The condition of <paramref name="type"/> on an InferenceService, or null.</summary>
    public static InferenceServiceCondition? Condition(InferenceService isvc, string type) =>
        isvc.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    /// <summary>Nodes whose labels satisfy the pod's required node affinity (In expressions), as the scheduler would filter.</summary>
    public async Task<List<string>> EligibleNodesAsync(V1PodSpec pod)
    {
        var nodes = await Client.CoreV1.ListNodeAsync();
        var terms = pod.Affinity?.NodeAffinity?.RequiredDuringSchedulingIgnoredDuringExecution?.NodeSelectorTerms;
        return [.. nodes.Items
            .Where(n => terms is null || terms.Any(t => (t.MatchExpressions ?? []).All(e =>
                e.OperatorProperty == "In" && n.Metadata.Labels?.TryGetValue(e.Key, out var v) == true && e.Values.Contains(v))))
            .Select(n => n.Metadata.Name)
            .Order(StringComparer.Ordinal)];
    }

    public static JsonObject Json(object obj) => JsonDiff.ToNode(obj).AsObject();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _controller.StopAsync(CancellationToken.None);
        _controller.Dispose();
        await _controllerInformers.StopAsync();
        await _observer.StopAsync();
        await _observer.DisposeAsync();
        await _controllerInformers.DisposeAsync();
        Client.Dispose();
        await Server.DisposeAsync();
        _stop.Dispose();
    }
}
