using KServe.Node.Hosting.Cli;
using System.ClientModel;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using k8s;
using k8s.Models;
using KServe.Node.Agent.Cli;
using KServe.Node.Agent.Kubernetes;
using KServe.Node.Api;
using KServe.Node.Api.Serialization;
using KServe.Node.CacheController;
using KServe.Node.Gguf;
using KServe.Node.IsvcController;
using KServe.Node.LlmServer;
using KServe.Node.Runtime;
using KServe.Node.TestKit;
using KServe.Node.TestKit.ApiServer;
using KServe.Node.TestKit.S3;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenAI;
using OpenAI.Chat;

namespace KServe.Node.E2E.Tests;

/// <summary>
/// The whole system in one process: the test API server, s3rver, the cache-controller, three node-agents (one per
/// simulated node, each with its own cache root), the isvc-controller and finally llm-server on the folder the
/// generated Deployment mounts. The run is shared by two checks: the flow itself and the RBAC rules of the manifests
/// against the requests each component made (told apart by user agent).
/// </summary>
public sealed class WholeSystemTests(WholeSystemRun run) : IClassFixture<WholeSystemRun>
{
    [Fact]
    public void Cached_model_is_served_through_the_OpenAI_client_on_the_node_it_was_placed_on()
    {
        Assert.Null(run.Failure);
        Assert.Equal(["n1", "n2"], run.NodesHoldingModel);
        Assert.False(Directory.Exists(Path.Combine(run.Roots["n3"], "models", run.StorageKey)), "n3 is outside the node group and must get nothing");
        Assert.NotEmpty(run.StreamedContent);
        Assert.NotNull(run.FinishReason);
    }

    /// <summary>
    /// Every (API group, resource, verb) a component used is granted to its ServiceAccount by the rendered manifests,
    /// and every grant was used, except those whose code paths this flow cannot reach (listed with the reason).
    /// </summary>
    [Fact]
    public void RBAC_rules_cover_exactly_what_each_component_used()
    {
        Assert.Null(run.Failure);
        var docs = PackagingTests.Documents(PackagingTests.RenderKustomize());
        var problems = new List<string>();
        foreach (var (agent, serviceAccount) in WholeSystemRun.Components)
        {
            var granted = Granted(docs, serviceAccount);
            var used = run.Requests
                .Where(r => r.UserAgent == agent && r.Verb != "discovery")
                .Select(r => Permission(r.Group ?? "", r.Subresource is null ? r.Resource : $"{r.Resource}/{r.Subresource}", r.Verb))
                .ToHashSet(StringComparer.Ordinal);
            Assert.NotEmpty(used);
            problems.AddRange(used.Except(granted).Order(StringComparer.Ordinal).Select(p => $"{serviceAccount}: used but not granted: {p}"));
            var unreachable = WholeSystemRun.NotExercised.GetValueOrDefault(serviceAccount, []);
            problems.AddRange(granted.Except(used).Except(unreachable).Order(StringComparer.Ordinal)
                .Select(p => $"{serviceAccount}: granted but never used: {p}"));
            problems.AddRange(unreachable.Except(granted).Select(p => $"{serviceAccount}: expected grant missing: {p}"));
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private static string Permission(string group, string resource, string verb) => $"{(group.Length == 0 ? "core" : group)} {resource} {verb}";

    private static HashSet<string> Granted(List<JsonObject> docs, string serviceAccount)
    {
        var roles = docs
            .Where(d => (string?)d["kind"] is "ClusterRoleBinding" or "RoleBinding"
                && d["subjects"]!.AsArray().Any(s => (string?)s!["kind"] == "ServiceAccount" && (string?)s["name"] == serviceAccount))
            .Select(d => ((string)d["roleRef"]!["kind"]!, (string)d["roleRef"]!["name"]!))
            .ToHashSet();
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var role in docs.Where(d => roles.Contains(((string)d["kind"]!, (string)d["metadata"]!["name"]!))))
        {
            foreach (var rule in role["rules"]!.AsArray())
            {
                foreach (var g in rule!["apiGroups"]!.AsArray())
                {
                    foreach (var r in rule["resources"]!.AsArray())
                    {
                        foreach (var v in rule["verbs"]!.AsArray())
                        {
                            set.Add(Permission((string)g!, (string)r!, (string)v!));
                        }
                    }
                }
            }
        }
        return set;
    }
}

/// <summary>Runs the flow once for the class; records what happened for the assertions (and the failure, if any).</summary>
public sealed class WholeSystemRun : IAsyncLifetime
{
    public const string Namespace = "default";
    public const string IsvcName = "tiny-chat";
    public const string ModelUri = "s3://models/tiny";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    /// <summary>User agent of each component's client and the ServiceAccount the manifests run it under.</summary>
    public static readonly (string UserAgent, string ServiceAccount)[] Components =
    [
        ("node-agent", "kserve-node-agent"),
        ("cache-controller", "kserve-node-cache-controller"),
        ("isvc-controller", "kserve-node-isvc-controller"),
    ];

    /// <summary>
    /// Grants whose code paths this flow does not reach, each with where the code uses it: deletion and clean-up,
    /// conflict retries (a fresh get), leader election, the webhooks' certificate and CA injection (off in-process), credentials from
    /// secrets (the flow passes them in the environment), KServe's ConfigMap, the gateway's HTTPRoutes, drift repair.
    /// </summary>
    public static readonly Dictionary<string, string[]> NotExercised = new(StringComparer.Ordinal)
    {
        ["kserve-node-agent"] =
        [
            "core secrets get", // CredentialResolver: storage-config secret, service-account secrets
            "serving.kserve.io localmodelnodes get", // conflict retry of a status write (reads come from the informer)
        ],
        ["kserve-node-cache-controller"] =
        [
            "admissionregistration.k8s.io validatingwebhookconfigurations get", // CaBundlePatcher
            "admissionregistration.k8s.io validatingwebhookconfigurations update",
            "core secrets get", // SharedCertificate: the webhooks' serving certificate
            "core secrets create",
            "core secrets update", // its renewal
            "coordination.k8s.io leases get", // leader election
            "coordination.k8s.io leases create",
            "coordination.k8s.io leases update",
            "core configmaps get", // inferenceservice-config when --configmap-namespace is set
            "core events patch", // a repeated event
            "core persistentvolumes delete", // a cache or group removed
            "core persistentvolumeclaims delete",
            "serving.kserve.io localmodelnodes delete", // a node leaves every group
            "serving.kserve.io localmodelnodes update", // the models of an existing node change
            "serving.kserve.io localmodelnodes get", // conflict retry of that update
            "serving.kserve.io localmodelcaches get", // conflict retry
            "serving.kserve.io localmodelnamespacecaches get",
            "serving.kserve.io localmodelnamespacecaches update", // finalizer of a namespace cache
            "serving.kserve.io localmodelnodegroups get", // webhook lookup, conflict retry
            "serving.kserve.io localmodelnamespacecaches/status update",
            "serving.kserve.io inferenceservices get", // webhook lookup
            "serving.kserve.io llminferenceservices get", // LLMInferenceServices where KServe serves them
            "serving.kserve.io llminferenceservices list",
            "serving.kserve.io llminferenceservices watch",
        ],
        ["kserve-node-isvc-controller"] =
        [
            "admissionregistration.k8s.io validatingwebhookconfigurations get", // CaBundlePatcher
            "admissionregistration.k8s.io validatingwebhookconfigurations update",
            "core secrets get", // SharedCertificate: the webhook's serving certificate
            "core secrets create",
            "core secrets update", // its renewal
            "coordination.k8s.io leases get", // leader election
            "coordination.k8s.io leases create",
            "coordination.k8s.io leases update",
            "core events patch", // a repeated event
            "serving.kserve.io inferenceservices get", // conflict retry of the status write
            "apps deployments get", // children are read from the informers; live only when a same-named child lacks our label, or on deletion
            "core services get",
            "apps deployments delete", // clean-up when the model moves away or the isvc goes
            "core services delete",
            "core services patch", // drift repair
            "autoscaling horizontalpodautoscalers delete",
            "autoscaling horizontalpodautoscalers patch",
            "networking.k8s.io ingresses get", // the Ingress is made once the predictor Deployment is available (no kubelet here)
            "networking.k8s.io ingresses create",
            "networking.k8s.io ingresses patch",
            "networking.k8s.io ingresses delete",
            "gateway.networking.k8s.io httproutes get", // with the Gateway API enabled
            "gateway.networking.k8s.io httproutes list",
            "gateway.networking.k8s.io httproutes watch",
            "gateway.networking.k8s.io httproutes create",
            "gateway.networking.k8s.io httproutes patch",
            "gateway.networking.k8s.io httproutes delete",
        ],
    };

    private readonly List<IAsyncDisposable> _stops = [];
    private readonly CancellationTokenSource _cts = new();

    public Exception? Failure { get; private set; }
    public string StorageKey { get; } = KServe.Node.Api.StorageKey.Compute(ModelUri);
    public Dictionary<string, string> Roots { get; } = [];
    public List<string> NodesHoldingModel { get; } = [];
    public string StreamedContent { get; private set; } = "";
    public ChatFinishReason? FinishReason { get; private set; }
    public IReadOnlyList<RecordedRequest> Requests { get; private set; } = [];

    public async ValueTask InitializeAsync()
    {
        try
        {
            await RunAsync();
        }
        catch (Exception e)
        {
            Failure = e;
        }
    }

    private async Task RunAsync()
    {
        var work = Directory.CreateTempSubdirectory("kserve-node-e2e-");
        _stops.Add(new Cleanup(() => work.Delete(recursive: true)));

        var api = await TestApiServer.StartAsync();
        _stops.Add(api);
        await api.ApplyCrdsFromDirectoryAsync(RepoPaths.Crds);
        await api.ApplyCrdsFromDirectoryAsync(Path.Combine(RepoPaths.Crds, "optional"));
        using var admin = api.CreateClient("e2e-admin");
        var existing = (await admin.CoreV1.ListNamespaceAsync()).Items.Select(n => n.Metadata.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var ns in new[] { Namespace, "kserve-localmodel-jobs", "kserve", "kserve-node" }.Where(n => !existing.Contains(n)))
        {
            await admin.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } });
        }
        foreach (var (node, member) in new[] { ("n1", true), ("n2", true), ("n3", false) })
        {
            await admin.CoreV1.CreateNodeAsync(new V1Node
            {
                Metadata = new V1ObjectMeta { Name = node, Labels = member ? new Dictionary<string, string> { ["kserve/localmodel"] = "worker" } : new Dictionary<string, string> { ["kserve/localmodel"] = "none" } },
                Status = new V1NodeStatus { Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }] },
            });
        }

        // The model: a tiny generated llama in s3rver.
        var s3 = await S3rverProcess.StartAsync();
        _stops.Add(s3);
        var model = Path.Combine(work.FullName, "tiny.gguf");
        TestModelGenerator.GenerateLlama(model, Path.Combine(RepoPaths.Root, ".native", "llama.cpp", "models", "ggml-vocab-llama-spm.gguf"),
            DemoModel.Demo with { Layers = 2, EmbeddingLength = 64, FeedForwardLength = 128, HeadsKv = 2, WeightType = GeneratedWeightType.F32 });
        using (var s3c = new AmazonS3Client(new BasicAWSCredentials(S3rverProcess.AccessKey, S3rverProcess.SecretKey),
            new AmazonS3Config { ServiceURL = s3.Endpoint, ForcePathStyle = true }))
        {
            await s3c.PutBucketAsync("models");
            await s3c.PutObjectAsync(new PutObjectRequest { BucketName = "models", Key = "tiny/tiny.gguf", FilePath = model, UseChunkEncoding = false });
        }
        Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", s3.Endpoint);
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", S3rverProcess.AccessKey);
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", S3rverProcess.SecretKey);

        // The daemons, each with its own client (user agent = component).
        var cache = CacheControllerApp.Build(
            ["--CacheController:EnableWebhooks=false", "--CacheController:MetricsAddr=127.0.0.1:0",
             "--CacheController:Workers=2"],
            api.CreateClient("cache-controller"), b => b.Logging.SetMinimumLevel(LogLevel.Warning));
        await StartAsync(cache);
        foreach (var node in new[] { "n1", "n2", "n3" })
        {
            var root = Directory.CreateDirectory(Path.Combine(work.FullName, node)).FullName;
            Roots[node] = root;
            var cl = AgentCli.App.Parse(["--root", root, "--http-port", "0", "--address", "127.0.0.1"]);
            var agent = KubernetesMode.Build(cl, api.CreateClient("node-agent"), node);
            await StartAsync(agent);
        }
        var isvcClient = api.CreateClient("isvc-controller");
        var informers = new SharedInformerFactory(isvcClient, NullLoggerFactory.Instance, TimeProvider.System);
        var events = new EventRecorder(isvcClient, "isvc-controller", null, TimeProvider.System, NullLogger<EventRecorder>.Instance);
        var controller = IsvcControllerSetup.Build(informers, new IsvcControllerOptions(), events, TimeProvider.System, NullLoggerFactory.Instance);
        await controller.StartAsync(_cts.Token);
        _stops.Add(new Cleanup(() => controller.StopAsync(CancellationToken.None).GetAwaiter().GetResult()));

        // What an admin applies.
        await ApplyAsync(admin, $$"""
            apiVersion: serving.kserve.io/v1alpha1
            kind: LocalModelNodeGroup
            metadata:
              name: workers
            spec:
              storageLimit: 1Gi
              persistentVolumeSpec:
                accessModes: [ReadWriteOnce]
                capacity:
                  storage: 1Gi
                storageClassName: local-storage
                persistentVolumeReclaimPolicy: Delete
                volumeMode: Filesystem
                local:
                  path: /models
                nodeAffinity:
                  required:
                    nodeSelectorTerms:
                      - matchExpressions:
                          - key: kserve/localmodel
                            operator: In
                            values: [worker]
              persistentVolumeClaimSpec:
                accessModes: [ReadWriteOnce]
                storageClassName: local-storage
                volumeMode: Filesystem
                resources:
                  requests:
                    storage: 1Gi
            ---
            apiVersion: serving.kserve.io/v1alpha1
            kind: LocalModelCache
            metadata:
              name: tiny
            spec:
              sourceModelUri: {{ModelUri}}
              modelSize: 10Mi
              nodeGroups: [workers]
            ---
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: {{IsvcName}}
              namespace: {{Namespace}}
            spec:
              predictor:
                model:
                  modelFormat:
                    name: gguf
                  runtime: kserve-node-llm
                  storageUri: {{ModelUri}}
            """);

        // The model lands on the member nodes, the cache says so, the nodes carry the placement label.
        var label = PlacementLabels.Prefix + StorageKey;
        await WaitAsync("the cache reports the model downloaded on n1 and n2", async () =>
        {
            var c = JsonNode.Parse(((System.Text.Json.JsonElement)await admin.CustomObjects.GetClusterCustomObjectAsync(
                "serving.kserve.io", "v1alpha1", "localmodelcaches", "tiny")).GetRawText())!;
            var status = c["status"]?["nodeStatus"]?.AsObject();
            return status is not null && new[] { "n1", "n2" }.All(n => (string?)status[n] == "NodeDownloaded");
        });
        await WaitAsync("n1 and n2 carry the placement label", async () =>
        {
            var nodes = await admin.CoreV1.ListNodeAsync();
            NodesHoldingModel.Clear();
            NodesHoldingModel.AddRange(nodes.Items.Where(n => n.Metadata.Labels?.ContainsKey(label) == true).Select(n => n.Metadata.Name).Order(StringComparer.Ordinal));
            return NodesHoldingModel.Count == 2;
        });
        foreach (var n in new[] { "n1", "n2" })
        {
            Assert.True(File.Exists(Path.Combine(Roots[n], "models", StorageKey, "tiny.gguf")), $"{n}: the model file is not in its cache root");
        }

        // The Deployment is pinned to those nodes.
        V1Deployment? deployment = null;
        await WaitAsync("the predictor Deployment requires the placement label", async () =>
        {
            var list = await admin.AppsV1.ListNamespacedDeploymentAsync(Namespace);
            deployment = list.Items.FirstOrDefault(d => d.Metadata.Name == IsvcName + "-predictor");
            return deployment?.Spec.Template.Spec.Affinity?.NodeAffinity?.RequiredDuringSchedulingIgnoredDuringExecution?.NodeSelectorTerms
                .Any(t => t.MatchExpressions?.Any(e => e.Key == label) == true) == true;
        });
        var pod = deployment!.Spec.Template.Spec;
        var container = pod.Containers.Single(c => c.Args?.Any(a => a.StartsWith("--model", StringComparison.Ordinal)) == true);
        var mount = container.VolumeMounts.Single(m => m.MountPath == KServeNames.ModelMountPath);
        Assert.Equal($"models/{StorageKey}", mount.SubPath);

        // llm-server on n1's copy, as the pod would see it at /mnt/models.
        var folder = Path.Combine(Roots[NodesHoldingModel[0]], mount.SubPath);
        var args = container.Args
            .Where(a => !a.StartsWith("--host", StringComparison.Ordinal) && !a.StartsWith("--port", StringComparison.Ordinal))
            .Select(a => a.Replace(KServeNames.ModelMountPath, folder, StringComparison.Ordinal))
            .Concat(["--host", "127.0.0.1", "--port", "0", "--native-dir", Path.Combine(RepoPaths.Root, ".native", "cpu"),
                "--ctx-size", "1024", "--parallel", "1", "--threads", "1"])
            .ToArray();
        var llm = LlmServerApp.Create(args, b => b.Logging.SetMinimumLevel(LogLevel.Warning));
        await StartAsync(llm);
        var address = llm.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var chat = new ChatClient(IsvcName, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(address + "/v1") });
        var text = new System.Text.StringBuilder();
        using var timeout = new CancellationTokenSource(Timeout);
        await foreach (var u in chat.CompleteChatStreamingAsync([new UserChatMessage("Say hello")],
            new ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0 }, timeout.Token))
        {
            foreach (var part in u.ContentUpdate)
            {
                text.Append(part.Text);
            }
            FinishReason ??= u.FinishReason;
        }
        StreamedContent = text.ToString();
        Requests = api.Requests;
    }

    private async Task StartAsync(WebApplication app)
    {
        await app.StartAsync(_cts.Token);
        _stops.Add(new Cleanup(() =>
        {
            app.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
            ((IAsyncDisposable)app).DisposeAsync().AsTask().GetAwaiter().GetResult();
        }));
    }

    private static async Task ApplyAsync(Kubernetes client, string yaml)
    {
        foreach (var doc in KServe.Node.Api.Serialization.YamlJson.ParseAll(yaml).OfType<JsonObject>())
        {
            var apiVersion = ((string)doc["apiVersion"]!).Split('/');
            var plural = ((string)doc["kind"]!).ToLowerInvariant() + "s";
            if ((string?)doc["metadata"]!["namespace"] is { } ns)
            {
                await client.CustomObjects.CreateNamespacedCustomObjectAsync(doc, apiVersion[0], apiVersion[1], ns, plural);
            }
            else
            {
                await client.CustomObjects.CreateClusterCustomObjectAsync(doc, apiVersion[0], apiVersion[1], plural);
            }
        }
    }

    /// <summary>Polls the API until <paramref name="condition"/> holds; fails naming what was awaited.</summary>
    private static async Task WaitAsync(string what, Func<Task<bool>> condition)
    {
        var deadline = TimeProvider.System.GetTimestamp();
        while (!await condition())
        {
            if (TimeProvider.System.GetElapsedTime(deadline) > Timeout)
            {
                throw new TimeoutException($"timed out waiting until {what}");
            }
            await Task.Delay(200);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        for (var i = _stops.Count - 1; i >= 0; i--)
        {
            try
            {
                await _stops[i].DisposeAsync();
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
            {
                // Shutting down: a component already stopped by its token is fine.
            }
        }
        _cts.Dispose();
    }

    private sealed class Cleanup(Action action) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            action();
            return ValueTask.CompletedTask;
        }
    }
}
