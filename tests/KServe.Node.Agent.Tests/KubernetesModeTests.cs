using KServe.Node.Hosting.Cli;
using System.Text;
using k8s;
using k8s.Models;
using KServe.Node.Agent.Cli;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Kubernetes;
using KServe.Node.Agent.Tests.Servers;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Runtime;
using KServe.Node.TestKit;
using KServe.Node.TestKit.ApiServer;
using ResourceType = KServe.Node.Runtime.ResourceType;
using KServe.Node.TestKit.S3;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace KServe.Node.Agent.Tests;

/// <summary>Kubernetes mode against the test API server over real HTTP: spec → download → status → entry removed → folder collected.</summary>
public sealed class KubernetesModeTests
{
    private const string JobNamespace = "kserve-localmodel-jobs";

    [Fact]
    public async Task Own_LocalModelNode_is_downloaded_reported_with_kserve_enums_and_collected_when_the_entry_goes()
    {
        await using var api = await TestApiServer.StartAsync();
        using var client = api.CreateClient("agent-test");
        foreach (var crd in new[] { "localmodelnodes", "localmodelnodegroups" })
        {
            var yaml = await File.ReadAllTextAsync(Path.Combine(RepoPaths.Root, "daemonset", "crds", $"serving.kserve.io_{crd}.yaml"));
            await client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(KubernetesYaml.Deserialize<V1CustomResourceDefinition>(yaml));
        }
        ResourceType.Register<LocalModelNode>(namespaced: false);
        ResourceType.Register<LocalModelNodeGroup>(namespaced: false);
        var nodes = new ResourceClient<LocalModelNode>(client);

        // Sources: s3rver reached through a ServiceAccount secret with KServe's S3 annotations, and plain HTTP.
        await using var s3rver = await S3rverProcess.StartAsync();
        using var s3 = S3TestClient.For(s3rver.Endpoint);
        await s3.PutBucketAsync("models");
        var iris = TestData.Bytes(2 << 20, 60);
        await s3.PutAsync("models", "iris/model.bin", iris);
        await using var web = await RangeHttpServer.StartAsync();
        var other = TestData.Bytes(1 << 20, 61);
        web.AddFile("other.gguf", other);

        await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new() { Name = JobNamespace } });
        await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new()
            {
                Name = "s3-creds",
                Annotations = new Dictionary<string, string>
                {
                    ["serving.kserve.io/s3-endpoint"] = $"127.0.0.1:{s3rver.Port}",
                    ["serving.kserve.io/s3-usehttps"] = "0",
                    ["serving.kserve.io/s3-region"] = "us-east-1",
                },
            },
            Data = new Dictionary<string, byte[]>
            {
                ["AWS_ACCESS_KEY_ID"] = Encoding.UTF8.GetBytes(S3rverProcess.AccessKey),
                ["AWS_SECRET_ACCESS_KEY"] = Encoding.UTF8.GetBytes(S3rverProcess.SecretKey),
            },
        }, JobNamespace);
        await client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount
        {
            Metadata = new() { Name = "s3-sa" },
            Secrets = [new V1ObjectReference { Name = "s3-creds" }],
        }, JobNamespace);
        await new ResourceClient<LocalModelNodeGroup>(client).CreateAsync(Api.Serialization.ApiSerializer.Deserialize<LocalModelNodeGroup>("""
            apiVersion: serving.kserve.io/v1alpha1
            kind: LocalModelNodeGroup
            metadata: {name: local}
            spec:
              storageLimit: 1Gi
              persistentVolumeSpec: {capacity: {storage: 1Gi}, local: {path: /models}, storageClassName: local-storage}
              persistentVolumeClaimSpec: {resources: {requests: {storage: 1Gi}}}
            """));
        var irisUri = "s3://models/iris";
        var otherUri = web.BaseUrl + "/other.gguf";
        await nodes.CreateAsync(new LocalModelNode
        {
            Metadata = new() { Name = "worker-1" },
            Spec = new LocalModelNodeSpec
            {
                LocalModels =
                [
                    new LocalModelInfo { ModelName = "iris", SourceModelUri = irisUri, NodeGroup = "local", ServiceAccountName = "s3-sa" },
                    new LocalModelInfo { ModelName = "other", Namespace = "team-a", SourceModelUri = otherUri, NodeGroup = "local" },
                ],
            },
        });
        await nodes.CreateAsync(new LocalModelNode
        {
            Metadata = new() { Name = "worker-2" },
            Spec = new LocalModelNodeSpec { LocalModels = [new LocalModelInfo { ModelName = "x", SourceModelUri = web.BaseUrl + "/none" }] },
        });

        using var tmp = new TempDir();
        var root = tmp.Sub("root");
        using var agentClient = api.CreateClient("node-agent");
        await using var app = KubernetesMode.Build(
            AgentCli.App.Parse(["--root", root, "--http-port", "0", "--address", "127.0.0.1", "--Download:GcGrace=00:00:00"]), agentClient, "worker-1");
        await using var informers = new SharedInformerFactory(client);
        var watch = informers.Get<LocalModelNode>();
        var changed = new SemaphoreSlim(0);
        using var _ = watch.AddEventHandler(_ => changed.Release());
        watch.Start();
        await app.StartAsync();

        async Task<LocalModelNode> WaitFor(Func<LocalModelNode, bool> predicate)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (true)
            {
                if (watch.Get(new ObjectKey(null, "worker-1")) is { } n && predicate(n))
                {
                    return n;
                }
                await changed.WaitAsync(timeout.Token);
            }
        }

        var done = await WaitFor(n => n.Status?.ModelStatus is { Count: 2 } s && s.Values.All(v => v == ModelStates.Downloaded)
            && n.Status.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true);

        Assert.Equal(["iris", "team-a/other"], done.Status!.ModelStatus!.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(iris.Length, done.Status.ModelProgress!["iris"].BytesDone);
        Assert.Equal(other.Length, done.Status.ModelProgress!["team-a/other"].BytesTotal);
        Assert.Equal(1L << 30, done.Status.Storage!.Capacity!.ToInt64());
        var irisKey = Api.StorageKey.Compute(irisUri);
        Assert.Equal(TestData.Sha256(iris), TestData.Sha256File(Path.Combine(root, "models", irisKey, "model.bin")));
        Assert.Equal(TestData.Sha256(other), TestData.Sha256File(Path.Combine(root, "models", Api.StorageKey.Compute(otherUri), "other.gguf")));
        Assert.Null((await nodes.GetAsync(new ObjectKey(null, "worker-2")))!.Status);

        // Steady state: the status writer wakes every progress interval, but it reads the informer's copy, so a node whose
        // status is already right makes no requests beyond its watches (it used to GET its LocalModelNode each time).
        var writer = app.Services.GetRequiredService<NodeStatusWriter>();
        writer.ProgressInterval = TimeSpan.FromMilliseconds(100);
        writer.MinInterval = TimeSpan.FromMilliseconds(10);
        writer.Kick();
        await Task.Delay(500);
        var from = api.Requests.Count;
        await Task.Delay(1500);
        var steady = api.Requests.Skip(from).Where(r => r.UserAgent == "node-agent" && r.Verb != "watch").ToList();
        Assert.True(steady.Count == 0, "requests at steady state: " + string.Join(", ", steady.Select(r => $"{r.Verb} {r.Resource}/{r.Name}")));

        // The cache-controller drops the iris entry: its status key goes and its folder is collected.
        var current = (await nodes.GetAsync(new ObjectKey(null, "worker-1")))!;
        current.Spec.LocalModels = [.. current.Spec.LocalModels.Where(m => m.ModelName != "iris")];
        await nodes.ReplaceAsync(current);
        var after = await WaitFor(n => n.Status?.ModelStatus is { Count: 1 } s && s.ContainsKey("team-a/other"));

        Assert.False(after.Status!.ModelProgress!.ContainsKey("iris"));
        var engine = app.Services.GetRequiredService<CacheEngine>();
        await engine.WaitForAsync(s => s.Count == 1, TimeSpan.FromSeconds(30));
        // The collection can trail the desired state by a pass (a job still draining defers it).
        var collectBy = DateTime.UtcNow.AddSeconds(30);
        while ((Directory.Exists(Path.Combine(root, "models", irisKey)) || File.Exists(Path.Combine(root, ".state", irisKey + ".json")))
            && DateTime.UtcNow < collectBy)
        {
            await Task.Delay(50);
        }
        Assert.False(Directory.Exists(Path.Combine(root, "models", irisKey)));
        Assert.False(File.Exists(Path.Combine(root, ".state", irisKey + ".json")));
        await app.StopAsync();

        // Credentials were read only where the Role in the manifests grants them: the job namespace.
        var credentialReads = api.Requests.Where(r => r.UserAgent == "node-agent" && r.Resource is "secrets" or "serviceaccounts").ToList();
        Assert.Contains(credentialReads, r => r.Resource == "secrets");
        Assert.All(credentialReads, r => Assert.True(r.Namespace == JobNamespace && r.Verb == "get", $"{r.Verb} {r.Resource} in '{r.Namespace}'"));
    }

    [Fact]
    public void Kubernetes_mode_without_NODE_NAME_says_what_is_missing()
    {
        var e = Assert.Throws<CliException>(() => KubernetesMode.Build(AgentCli.App.Parse(["--root", "/tmp/x"]), null, ""));
        Assert.StartsWith("no node name: Kubernetes mode takes it from NODE_NAME", e.Message, StringComparison.Ordinal);
    }
}
