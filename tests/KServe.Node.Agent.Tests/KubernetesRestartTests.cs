using k8s;
using k8s.Models;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Store;
using KServe.Node.Agent.Tests.Servers;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Runtime;
using KServe.Node.TestKit;
using KServe.Node.TestKit.ApiServer;
using KServe.Node.TestKit.Net;
using KServe.Node.TestKit.S3;
using ResourceType = KServe.Node.Runtime.ResourceType;

namespace KServe.Node.Agent.Tests;

/// <summary>
/// The agent process in Kubernetes mode against the test API server: restarts keep the cache, resume a
/// killed download, never publish a Pending flap, and a missing LocalModelNode deletes nothing.
/// </summary>
public sealed class KubernetesRestartTests
{
    private const int BigObject = 64 << 20;
    private const int Streams = 4;
    private const int Chunk = 1 << 20;
    private const string Node = "worker-1";

    private static void Note(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    /// <summary>The test API server with the agent's CRDs, a kubeconfig for the agent process, and a watch on the node's LocalModelNode.</summary>
    private sealed class Cluster : IAsyncDisposable
    {
        private readonly List<Dictionary<string, string>> _statuses = [];
        private readonly SemaphoreSlim _changed = new(0);
        private IDisposable? _handler;

        private Cluster(TestApiServer api, k8s.Kubernetes client, TempDir home)
        {
            Api = api;
            Client = client;
            Home = home;
            Nodes = new ResourceClient<LocalModelNode>(client);
            Informers = new SharedInformerFactory(client);
        }

        public TestApiServer Api { get; }
        public k8s.Kubernetes Client { get; }
        public TempDir Home { get; }
        public ResourceClient<LocalModelNode> Nodes { get; }
        public SharedInformerFactory Informers { get; }
        public string Kubeconfig => Path.Combine(Home.Path, "kubeconfig");

        public static async Task<Cluster> StartAsync()
        {
            var api = await TestApiServer.StartAsync();
            var client = api.CreateClient("agent-restart-test");
            foreach (var crd in new[] { "localmodelnodes", "localmodelnodegroups" })
            {
                var yaml = await File.ReadAllTextAsync(Path.Combine(RepoPaths.Root, "daemonset", "crds", $"serving.kserve.io_{crd}.yaml"));
                await client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(KubernetesYaml.Deserialize<V1CustomResourceDefinition>(yaml));
            }
            ResourceType.Register<LocalModelNode>(namespaced: false);
            ResourceType.Register<LocalModelNodeGroup>(namespaced: false);
            var cluster = new Cluster(api, client, new TempDir());
            api.WriteKubeconfig(cluster.Kubeconfig);
            var watch = cluster.Informers.Get<LocalModelNode>();
            cluster._handler = watch.AddEventHandler(e =>
            {
                if (e.Object.Metadata.Name == Node && e.Object.Status?.ModelStatus is { } s)
                {
                    lock (cluster._statuses)
                    {
                        cluster._statuses.Add(new Dictionary<string, string>(s));
                    }
                }
                cluster._changed.Release();
            });
            watch.Start();
            return cluster;
        }

        /// <summary>Every modelStatus map the agent wrote, in order.</summary>
        public List<Dictionary<string, string>> Statuses
        {
            get
            {
                lock (_statuses)
                {
                    return [.. _statuses];
                }
            }
        }

        public async Task<LocalModelNode> WaitFor(Func<LocalModelNode, bool> predicate, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(90));
            while (true)
            {
                if (Informers.Get<LocalModelNode>().Get(new ObjectKey(null, Node)) is { } n && predicate(n))
                {
                    return n;
                }
                await _changed.WaitAsync(cts.Token);
            }
        }

        public AgentProcess StartAgent(string root, IReadOnlyDictionary<string, string>? env = null, string grace = "00:10:00")
        {
            var environment = new Dictionary<string, string>(env ?? new Dictionary<string, string>())
            {
                ["KUBECONFIG"] = Kubeconfig,
                ["HOME"] = Home.Path,
                ["NODE_NAME"] = Node,
            };
            return AgentProcess.Start(["--root", root, "--http-port", "{port}", "--address", "127.0.0.1",
                $"--Download:Streams={Streams}", $"--Download:ChunkSizeBytes={Chunk}", $"--Download:GcGrace={grace}", "--Download:ReserveBytes=0"], environment);
        }

        public async Task SetModelsAsync(params LocalModelInfo[] models)
        {
            var current = await Nodes.GetAsync(new ObjectKey(null, Node));
            if (current is null)
            {
                await Nodes.CreateAsync(new LocalModelNode { Metadata = new() { Name = Node }, Spec = new LocalModelNodeSpec { LocalModels = [.. models] } });
                return;
            }
            current.Spec.LocalModels = [.. models];
            await Nodes.ReplaceAsync(current);
        }

        public async ValueTask DisposeAsync()
        {
            _handler?.Dispose();
            await Informers.DisposeAsync();
            Client.Dispose();
            await Api.DisposeAsync();
            Home.Dispose();
            _changed.Dispose();
        }
    }

    private static bool AllDownloaded(LocalModelNode n, int count) =>
        n.Status?.ModelStatus is { } s && s.Count == count && s.Values.All(v => v == ModelStates.Downloaded);

    [Fact]
    public async Task Kubernetes_agent_resumes_a_killed_download_and_restarts_after_SIGTERM_or_SIGKILL_without_refetching_or_a_Pending_flap()
    {
        await using var cluster = await Cluster.StartAsync();
        await using var web = await RangeHttpServer.StartAsync();
        var big = TestData.Bytes(BigObject, 80);
        web.AddFile("big/weights.bin", big);
        web.AddFile("extra/one.gguf", TestData.Bytes(64 << 10, 81));
        web.AddFile("extra/two.gguf", TestData.Bytes(64 << 10, 82));
        web.BytesPerSecond = 32L << 20;
        await using var s3rver = await S3rverProcess.StartAsync();
        using var s3 = S3TestClient.For(s3rver.Endpoint);
        await s3.PutBucketAsync("models");
        var small = TestData.Bytes(2 << 20, 83);
        await s3.PutAsync("models", "small/model.bin", small);
        await using var proxy = new FaultProxy(s3rver.Port);
        var env = new Dictionary<string, string>
        {
            ["AWS_ENDPOINT_URL"] = proxy.Endpoint,
            ["AWS_ACCESS_KEY_ID"] = S3rverProcess.AccessKey,
            ["AWS_SECRET_ACCESS_KEY"] = S3rverProcess.SecretKey,
            ["AWS_DEFAULT_REGION"] = "us-east-1",
        };
        var bigUri = web.BaseUrl + "/big/weights.bin";
        List<LocalModelInfo> models =
        [
            new() { ModelName = "big", SourceModelUri = bigUri, NodeGroup = "local" },
            new() { ModelName = "small", SourceModelUri = "s3://models/small", NodeGroup = "local" },
        ];
        await cluster.SetModelsAsync([.. models]);
        using var tmp = new TempDir();
        var root = tmp.Sub("root");
        var bigFile = Path.Combine(root, "models", Api.StorageKey.Compute(bigUri), "weights.bin");

        // 1. SIGKILL at 30-70 % of the big model.
        using (var first = cluster.StartAgent(root, env))
        {
            await web.WhenServedAtLeast(BigObject * 4 / 10).WaitAsync(TimeSpan.FromSeconds(90));
            await first.KillAsync();
        }
        var before = web.BytesServed;
        Assert.InRange(before, BigObject * 0.3, BigObject * 0.7);
        web.BytesPerSecond = null;
        using (var second = cluster.StartAgent(root, env))
        {
            await cluster.WaitFor(n => AllDownloaded(n, 2));
            var after = web.BytesServed - before;
            var bound = BigObject - before + Streams * Chunk;
            Note($"Kubernetes SIGKILL mid-download: killed at {before} of {BigObject} bytes; fetched after the restart {after}, bound {bound}");
            Assert.Contains("Resuming", second.Output, StringComparison.Ordinal);
            Assert.True(after <= bound, $"fetched {after} bytes after the restart; at most {bound}");
            Assert.Equal(TestData.Sha256(big), TestData.Sha256File(bigFile));
            await second.TerminateAsync();
        }

        // 2. Restarts after SIGTERM, then after SIGKILL: every status written names the cached models
        // ModelDownloaded, and nothing is fetched again. A new entry each round forces a status write.
        var extras = new[] { "one", "two" };
        for (var round = 0; round < 2; round++)
        {
            var (webBefore, s3Before, writesBefore) = (web.BytesServed, proxy.BytesSent, cluster.Statuses.Count);
            using var agent = cluster.StartAgent(root, env);
            await agent.WaitForLine("Cache ready");
            models.Add(new LocalModelInfo { ModelName = extras[round], SourceModelUri = $"{web.BaseUrl}/extra/{extras[round]}.gguf", NodeGroup = "local" });
            await cluster.SetModelsAsync([.. models]);
            await cluster.WaitFor(n => AllDownloaded(n, models.Count));
            var writes = cluster.Statuses.Skip(writesBefore).ToList();
            Assert.NotEmpty(writes);
            Assert.All(writes, w => Assert.Equal((ModelStates.Downloaded, ModelStates.Downloaded), (w["big"], w["small"])));
            var refetched = web.BytesServed - webBefore - (64 << 10);
            Note($"Kubernetes restart after {(round == 0 ? "SIGTERM" : "SIGKILL")}: {refetched} bytes of cached models fetched from HTTP, {proxy.BytesSent - s3Before} bytes from s3rver; {writes.Count} status writes, all ModelDownloaded");
            Assert.Equal(0, refetched);
            Assert.Equal(s3Before, proxy.BytesSent);
            if (round == 0)
            {
                await agent.TerminateAsync();
            }
            else
            {
                await agent.KillAsync();
            }
        }
        Assert.Equal(TestData.Sha256(small), TestData.Sha256File(Path.Combine(root, "models", Api.StorageKey.Compute("s3://models/small"), "model.bin")));
    }

    [Fact]
    public async Task A_missing_LocalModelNode_keeps_everything_a_KServe_folder_is_adopted_and_a_deleted_LocalModelNode_keeps_its_models_for_the_grace_period()
    {
        await using var cluster = await Cluster.StartAsync();
        await using var web = await RangeHttpServer.StartAsync();
        var data = TestData.Bytes(256 << 10, 84);
        web.AddFile("new/model.gguf", data);
        using var tmp = new TempDir();
        var root = tmp.Sub("root");
        // A cache left by an earlier agent: a committed model, a partial download, a folder that is no storage key,
        // and a folder KServe's agent wrote (no manifest) for the model the LocalModelNode will name.
        var newUri = web.BaseUrl + "/new/model.gguf";
        var newFolder = Path.Combine(root, "models", Api.StorageKey.Compute(newUri));
        Directory.CreateDirectory(newFolder);
        await File.WriteAllBytesAsync(Path.Combine(newFolder, "model.gguf"), data);
        var oldKey = Api.StorageKey.Compute("s3://gone/model");
        using var store = new ModelStore(root);
        Directory.CreateDirectory(store.ModelPath(oldKey));
        await File.WriteAllBytesAsync(Path.Combine(store.ModelPath(oldKey), "m.bin"), [1, 2, 3]);
        store.WriteManifest(new ModelManifest { StorageKey = oldKey, TotalBytes = 3, Files = [new ManifestFile { Path = "m.bin", Size = 3 }] });
        var partial = Path.Combine(store.StagingDir, Api.StorageKey.Compute("s3://partial/model") + ".0001");
        Directory.CreateDirectory(partial);
        await File.WriteAllBytesAsync(Path.Combine(partial, "plan.json"), [4]);
        Directory.CreateDirectory(Path.Combine(store.ModelsDir, "llama-7b"));
        await File.WriteAllBytesAsync(Path.Combine(store.ModelsDir, "llama-7b", "model.gguf"), [5]);
        var before = TestData.Tree(root);

        using var agent = cluster.StartAgent(root);
        await agent.WaitForLine("Now listening");
        // No LocalModelNode: nothing is known, nothing is touched. Then one appears, naming only the KServe folder's model.
        await cluster.SetModelsAsync(new LocalModelInfo { ModelName = "new", SourceModelUri = newUri });
        await agent.WaitForLine("Adopted " + Api.StorageKey.Compute(newUri));
        await cluster.WaitFor(n => AllDownloaded(n, 1));
        Note($"adoption of a KServe folder by the agent process: {web.BytesServed} bytes fetched");
        Assert.Equal(0, web.BytesServed);
        Assert.Equal(before, TestData.Tree(root).Where(before.Contains));
        Assert.Contains($"Model {oldKey} is no longer desired; it is kept for the grace period", agent.Output, StringComparison.Ordinal);

        // Deleted: its models stay for the grace period too.
        await cluster.Nodes.DeleteAsync(new ObjectKey(null, Node));
        await agent.WaitForLine($"LocalModelNode/{Node} does not exist");
        await agent.WaitForLine($"Model {Api.StorageKey.Compute(newUri)} is no longer desired");
        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(root, "models", Api.StorageKey.Compute(newUri), "model.gguf")));
        Assert.Equal(before, TestData.Tree(root).Where(before.Contains));
        Assert.DoesNotContain("Collected", agent.Output, StringComparison.Ordinal);
    }
}
