using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;
using KServe.Node.Runtime;
using static KServe.Node.IsvcController.Tests.Samples;

namespace KServe.Node.IsvcController.Tests;

/// <summary>
/// The controller against the test API server over HTTP. The cache-controller's part (cache status, LocalModelNode
/// progress, Node placement labels) is written here exactly as it writes it.
/// </summary>
public sealed class ClusterTests
{
    private const string Uri = "hf://org/llama-gguf";
    private static readonly ObjectKey s_isvc = new(IsvcCluster.Ns, "chat");
    private static readonly ObjectKey s_predictor = new(IsvcCluster.Ns, "chat-predictor");

    private static JsonObject ChatIsvc(Action<JsonObject>? edit = null) => Isvc("chat", IsvcCluster.Ns, Uri, edit);

    [Fact]
    public async Task A_cache_on_three_nodes_places_pods_where_the_model_is_and_grows_without_a_template_change()
    {
        await using var c = await IsvcCluster.StartAsync();
        var cache = await c.CreateCacheAsync("llama", Uri, ["gpu"], new() { ["n1"] = "NodeDownloaded", ["n2"] = "NodeDownloading", ["n3"] = "NodeDownloadPending" });
        await c.AddNodeAsync("n1", cache, "gpu", holdsModel: true, "ModelDownloaded");
        await c.AddNodeAsync("n2", cache, "gpu", holdsModel: false, "ModelDownloading", new ModelProgress { BytesDone = 256L << 20, BytesTotal = 1L << 30 });
        await c.AddNodeAsync("n3", cache, "gpu", holdsModel: false, "ModelDownloadPending");

        await c.CreateIsvcAsync(ChatIsvc(p => { p["minReplicas"] = 1; p["maxReplicas"] = 3; }));

        var isvc = await c.WaitForAsync<InferenceService>(s_isvc, i => IsvcCluster.Condition(i, "ModelCached")?.Status == "True", "ModelCached");
        Assert.Contains("1 of 3 nodes", IsvcCluster.Condition(isvc, "ModelCached")!.Message, StringComparison.Ordinal);
        Assert.Contains("n2 downloading 25%", IsvcCluster.Condition(isvc, "ModelCached")!.Message, StringComparison.Ordinal);
        // KServe's bookkeeping keys, which the cache-controller reads.
        Assert.Equal("llama", isvc.Metadata.Labels["internal.serving.kserve.io/localmodel"]);
        Assert.Equal(Uri, isvc.Metadata.Annotations["internal.serving.kserve.io/localmodel-sourceuri"]);
        Assert.Equal("llama-gpu", isvc.Metadata.Annotations["internal.serving.kserve.io/localmodel-pvc-name"]);
        Assert.Equal("http://chat-team-a.example.com", isvc.Status!.Url);

        var deployment = await c.WaitForAsync<V1Deployment>(s_predictor, d => d.Spec.Replicas == 1, "Deployment scaled to 1");
        Assert.Equal(["n1"], await c.EligibleNodesAsync(deployment.Spec.Template.Spec));
        Assert.Equal("llama-gpu", deployment.Spec.Template.Spec.Volumes.Single(v => v.Name == "kserve-pvc-source").PersistentVolumeClaim.ClaimName);
        Assert.Equal("chat", deployment.Metadata.Labels["serving.kserve.io/inferenceservice"]);
        Assert.Equal("InferenceService", Assert.Single(deployment.Metadata.OwnerReferences).Kind);
        var hpa = await c.WaitForAsync<V2HorizontalPodAutoscaler>(s_predictor, _ => true, "HPA");
        Assert.Equal((1, 3), (hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas));
        var service = await c.WaitForAsync<V1Service>(s_predictor, _ => true, "Service");
        Assert.Equal("isvc.chat-predictor", service.Spec.Selector["app"]);

        // The second node finishes: the cache-controller labels it and updates the cache status.
        var templateBefore = IsvcCluster.Json(deployment.Spec.Template).ToJsonString();
        var generationBefore = deployment.Metadata.Generation;
        await c.LabelNodeAsync("n2", Uri);
        await c.SetCacheStatusAsync("llama", new() { ["n1"] = "NodeDownloaded", ["n2"] = "NodeDownloaded", ["n3"] = "NodeDownloadPending" });

        await c.WaitForAsync<InferenceService>(s_isvc, i => IsvcCluster.Condition(i, "ModelCached")?.Message?.Contains("2 of 3 nodes", StringComparison.Ordinal) == true, "2 of 3");
        var after = (await c.ClientFor<V1Deployment>().GetAsync(s_predictor))!;
        Assert.Equal(templateBefore, IsvcCluster.Json(after.Spec.Template).ToJsonString());
        Assert.Equal(generationBefore, after.Metadata.Generation);
        Assert.Equal(["n1", "n2"], await c.EligibleNodesAsync(after.Spec.Template.Spec));
    }

    [Fact]
    public async Task Another_runtime_s_service_that_uses_a_cache_gets_KServe_s_localmodel_keys_and_nothing_deployed()
    {
        await using var c = await IsvcCluster.StartAsync();
        var cache = await c.CreateCacheAsync("llama", Uri, ["gpu"], new() { ["n1"] = "NodeDownloaded" });
        await c.AddNodeAsync("n1", cache, "gpu", holdsModel: true, "ModelDownloaded");
        // KServe's e2e model-cache scenario: a huggingface-format InferenceService on a cached model.
        await c.CreateIsvcAsync(ChatIsvc(p => p["model"]!["modelFormat"] = new JsonObject { ["name"] = "huggingface" }));

        var isvc = await c.WaitForAsync<InferenceService>(s_isvc,
            i => i.Metadata.Labels?.ContainsKey("internal.serving.kserve.io/localmodel") == true, "the localmodel label");
        Assert.Equal("llama", isvc.Metadata.Labels!["internal.serving.kserve.io/localmodel"]);
        Assert.Equal(Uri, isvc.Metadata.Annotations!["internal.serving.kserve.io/localmodel-sourceuri"]);
        Assert.Equal("llama-gpu", isvc.Metadata.Annotations["internal.serving.kserve.io/localmodel-pvc-name"]);
        Assert.Null(isvc.Metadata.Finalizers);
        Assert.Null(isvc.Status);
        await Task.Delay(500);
        Assert.Null(await c.ClientFor<V1Deployment>().GetAsync(s_predictor));

        // Its storageUri moves off the cache: the keys come off again.
        var json = await c.GetIsvcJsonAsync("chat");
        json["spec"]!["predictor"]!["model"]!["storageUri"] = "hf://org/elsewhere";
        await c.ClientFor<InferenceService>().ReplaceAsync(KubernetesJson.Deserialize<InferenceService>(json.ToJsonString()));
        await c.WaitForAsync<InferenceService>(s_isvc,
            i => i.Metadata.Labels?.ContainsKey("internal.serving.kserve.io/localmodel") != true
                && i.Metadata.Annotations?.ContainsKey("internal.serving.kserve.io/localmodel-pvc-name") != true, "the keys removed");
    }

    [Fact]
    public async Task With_LabelAllConsumers_off_another_runtime_s_service_is_left_alone()
    {
        await using var c = await IsvcCluster.StartAsync(o => o.LabelAllConsumers = false);
        var cache = await c.CreateCacheAsync("llama", Uri, ["gpu"], new() { ["n1"] = "NodeDownloaded" });
        await c.AddNodeAsync("n1", cache, "gpu", holdsModel: true, "ModelDownloaded");
        await c.CreateIsvcAsync(ChatIsvc(p => p["model"]!["modelFormat"] = new JsonObject { ["name"] = "huggingface" }));
        // Ours, created after it, is labelled: by then the other one has been reconciled too.
        await c.CreateIsvcAsync(Isvc("ours", IsvcCluster.Ns, Uri));
        await c.WaitForAsync<InferenceService>(new ObjectKey(IsvcCluster.Ns, "ours"),
            i => i.Metadata.Labels?.ContainsKey("internal.serving.kserve.io/localmodel") == true, "our service labelled");
        var other = await c.ClientFor<InferenceService>().GetAsync(s_isvc);
        Assert.True(other!.Metadata.Labels?.ContainsKey("internal.serving.kserve.io/localmodel") != true);
    }

    [Fact]
    public async Task With_Gateway_API_off_KServe_s_Ingress_is_made_once_the_predictor_is_ready_and_removed_when_cluster_local()
    {
        await using var c = await IsvcCluster.StartAsync(o => o.IngressClassName = "nginx");
        var cache = await c.CreateCacheAsync("llama", Uri, ["gpu"], new() { ["n1"] = "NodeDownloaded" });
        await c.AddNodeAsync("n1", cache, "gpu", holdsModel: true, "ModelDownloaded");
        await c.CreateIsvcAsync(ChatIsvc());
        var pending = await c.WaitForAsync<InferenceService>(s_isvc, i => IsvcCluster.Condition(i, "IngressReady") is not null, "IngressReady");
        Assert.Equal("False", IsvcCluster.Condition(pending, "IngressReady")!.Status);
        Assert.Equal("Predictor ingress not created", IsvcCluster.Condition(pending, "IngressReady")!.Reason);
        Assert.Null(await c.ClientFor<V1Ingress>().GetAsync(s_isvc));

        // The Deployment becomes available (what the deployment controller and kubelet would report).
        var deployment = await c.WaitForAsync<V1Deployment>(s_predictor, _ => true, "Deployment");
        deployment.Status = new V1DeploymentStatus { Replicas = 1, ReadyReplicas = 1, AvailableReplicas = 1 };
        await c.ClientFor<V1Deployment>().ReplaceStatusAsync(deployment);

        var ingress = await c.WaitForAsync<V1Ingress>(s_isvc, _ => true, "the Ingress");
        Assert.Equal("nginx", ingress.Spec.IngressClassName);
        Assert.Equal(["chat-team-a.example.com", "chat-predictor-team-a.example.com"], ingress.Spec.Rules.Select(r => r.Host));
        Assert.All(ingress.Spec.Rules, r =>
        {
            var path = Assert.Single(r.Http.Paths);
            Assert.Equal(("/", "Prefix", "chat-predictor", 80), (path.Path, path.PathType, path.Backend.Service.Name, path.Backend.Service.Port.Number));
        });
        Assert.Equal("InferenceService", Assert.Single(ingress.Metadata.OwnerReferences).Kind);
        var ready = await c.WaitForAsync<InferenceService>(s_isvc, i => IsvcCluster.Condition(i, "IngressReady")?.Status == "True", "IngressReady True");
        Assert.Equal("http://chat-team-a.example.com", ready.Status!.Url);

        // Made cluster-local: the Ingress goes.
        var json = await c.GetIsvcJsonAsync("chat");
        json["metadata"]!["labels"] = new JsonObject { ["networking.kserve.io/visibility"] = "cluster-local" };
        await c.ClientFor<InferenceService>().ReplaceAsync(KubernetesJson.Deserialize<InferenceService>(json.ToJsonString()));
        await c.WaitGoneAsync<V1Ingress>(s_isvc, "the Ingress removed");
    }

    [Fact]
    public async Task A_settled_service_is_read_from_the_informers_and_its_own_status_write_does_not_requeue_it()
    {
        await using var c = await IsvcCluster.StartAsync();
        var cache = await c.CreateCacheAsync("llama", Uri, ["gpu"], new() { ["n1"] = "NodeDownloaded", ["n2"] = "NodeDownloadPending" });
        await c.AddNodeAsync("n1", cache, "gpu", holdsModel: true, "ModelDownloaded");
        await c.AddNodeAsync("n2", cache, "gpu", holdsModel: false, "ModelDownloadPending");
        await c.CreateIsvcAsync(ChatIsvc(p => { p["minReplicas"] = 1; p["maxReplicas"] = 2; }));
        await c.WaitForAsync<V1Deployment>(s_predictor, d => d.Spec.Replicas == 1, "Deployment scaled to 1");
        await c.WaitForAsync<V2HorizontalPodAutoscaler>(s_predictor, _ => true, "HPA");
        await Task.Delay(1000);

        // A change that moves only the status: the second node starts downloading. The controller reconciles once and
        // writes the status once; its children come from the informers (no GETs), and that write does not bring it back.
        var from = c.Server.Requests.Count;
        await c.SetCacheStatusAsync("llama", new() { ["n1"] = "NodeDownloaded", ["n2"] = "NodeDownloading" });
        await c.WaitForAsync<InferenceService>(s_isvc, i => IsvcCluster.Condition(i, "ModelCached")?.Message?.Contains("n2", StringComparison.Ordinal) == true, "n2 in ModelCached");
        await Task.Delay(1500);
        var made = c.Server.Requests.Skip(from).Where(r => r.UserAgent == IsvcCluster.ControllerAgent && r.Verb is not "watch")
            .Select(r => $"{r.Verb} {r.Resource}{(r.Subresource is null ? "" : "/" + r.Subresource)}").ToList();
        // (Plus the Event that reports the cache's new state.)
        Assert.True(made.Where(m => m != "create events").SequenceEqual(["update inferenceservices/status"]), "requests: " + string.Join(", ", made));
    }

    [Fact]
    public async Task While_no_node_holds_the_model_no_pod_is_created_and_the_first_finished_node_starts_them()
    {
        await using var c = await IsvcCluster.StartAsync();
        var cache = await c.CreateCacheAsync("llama", Uri, ["gpu"], new() { ["n1"] = "NodeDownloading", ["n2"] = "NodeDownloadPending" });
        await c.AddNodeAsync("n1", cache, "gpu", holdsModel: false, "ModelDownloading", new ModelProgress { BytesDone = 3L << 29, BytesTotal = 2L << 30 });
        await c.AddNodeAsync("n2", cache, "gpu", holdsModel: false, "ModelDownloadPending");

        await c.CreateIsvcAsync(ChatIsvc(p => p["minReplicas"] = 2));

        var isvc = await c.WaitForAsync<InferenceService>(s_isvc, i => IsvcCluster.Condition(i, "ModelCached")?.Reason == "ModelDownloading", "downloading");
        var ready = IsvcCluster.Condition(isvc, "Ready")!;
        Assert.Equal(("False", "ModelDownloading"), (ready.Status, ready.Reason));
        Assert.Contains("n1 downloading 75% (1.5 GiB of 2 GiB)", ready.Message, StringComparison.Ordinal);
        Assert.Contains("n2 pending", ready.Message, StringComparison.Ordinal);
        var gated = await c.WaitForAsync<V1Deployment>(s_predictor, _ => true, "Deployment");
        Assert.Equal(0, gated.Spec.Replicas);
        Assert.Null(await c.ClientFor<V2HorizontalPodAutoscaler>().GetAsync(s_predictor));
        Assert.Empty(await c.EligibleNodesAsync(gated.Spec.Template.Spec));

        await c.LabelNodeAsync("n1", Uri);
        await c.SetCacheStatusAsync("llama", new() { ["n1"] = "NodeDownloaded", ["n2"] = "NodeDownloading" });

        var open = await c.WaitForAsync<V1Deployment>(s_predictor, d => d.Spec.Replicas == 2, "scaled to minReplicas");
        Assert.Equal(IsvcCluster.Json(gated.Spec.Template).ToJsonString(), IsvcCluster.Json(open.Spec.Template).ToJsonString());
        await c.WaitForAsync<V2HorizontalPodAutoscaler>(s_predictor, h => h.Spec.MinReplicas == 2, "HPA");
        Assert.Equal(["n1"], await c.EligibleNodesAsync(open.Spec.Template.Spec));
    }

    [Fact]
    public async Task A_cache_that_fails_everywhere_is_reported_and_creates_no_pods()
    {
        await using var c = await IsvcCluster.StartAsync();
        var cache = await c.CreateCacheAsync("llama", Uri, ["gpu"], new() { ["n1"] = "NodeDownloadError", ["n2"] = "NodeDownloadError" });
        await c.AddNodeAsync("n1", cache, "gpu", holdsModel: false, "ModelDownloadError", new ModelProgress { Message = "401 gated repository: set HF_TOKEN" });
        await c.AddNodeAsync("n2", cache, "gpu", holdsModel: false, "ModelDownloadError", new ModelProgress { Message = "disk full" });

        await c.CreateIsvcAsync(ChatIsvc());

        var isvc = await c.WaitForAsync<InferenceService>(s_isvc, i => IsvcCluster.Condition(i, "Ready")?.Reason == "ModelDownloadFailed", "failed");
        var message = IsvcCluster.Condition(isvc, "PredictorReady")!.Message!;
        Assert.Contains("failed on all 2 nodes", message, StringComparison.Ordinal);
        Assert.Contains("n1 failed: 401 gated repository: set HF_TOKEN", message, StringComparison.Ordinal);
        Assert.Contains("n2 failed: disk full", message, StringComparison.Ordinal);
        Assert.Equal(0, (await c.WaitForAsync<V1Deployment>(s_predictor, _ => true, "Deployment")).Spec.Replicas);
        Assert.Null(await c.ClientFor<V2HorizontalPodAutoscaler>().GetAsync(s_predictor));
        var events = await c.Client.CoreV1.ListNamespacedEventAsync(IsvcCluster.Ns);
        Assert.Contains(events.Items, e => e.Type == "Warning" && e.Reason == "ModelDownloadFailed" && e.InvolvedObject.Name == "chat");
    }

    [Fact]
    public async Task Deleting_the_service_removes_its_children_and_its_finalizer()
    {
        await using var c = await IsvcCluster.StartAsync(o => o.EnableGatewayApi = false);
        await c.CreateIsvcAsync(ChatIsvc());
        await c.WaitForAsync<V1Deployment>(s_predictor, _ => true, "Deployment");
        await c.WaitForAsync<V2HorizontalPodAutoscaler>(s_predictor, _ => true, "HPA");
        var isvc = await c.WaitForAsync<InferenceService>(s_isvc, i => i.Metadata.Finalizers?.Contains("isvc.kserve-node.io/finalizer") == true, "finalizer");

        await c.Client.CustomObjects.DeleteNamespacedCustomObjectAsync("serving.kserve.io", "v1beta1", IsvcCluster.Ns, "inferenceservices", "chat");

        await c.WaitGoneAsync<InferenceService>(s_isvc, "InferenceService");
        await c.WaitGoneAsync<V1Deployment>(s_predictor, "Deployment");
        await c.WaitGoneAsync<V1Service>(s_predictor, "Service");
        await c.WaitGoneAsync<V2HorizontalPodAutoscaler>(s_predictor, "HPA");
        Assert.NotNull(isvc.Metadata.Uid);
    }

    [Fact]
    public async Task A_KServe_style_service_is_accepted_and_nothing_in_it_is_lost()
    {
        await using var c = await IsvcCluster.StartAsync();
        var original = Yaml(KServeStyleYaml);
        original["metadata"]!["namespace"] = IsvcCluster.Ns;
        await c.CreateIsvcAsync(original.DeepClone().AsObject());

        await c.WaitForAsync<InferenceService>(new ObjectKey(IsvcCluster.Ns, "qwen-chat"), i => i.Status?.Conditions is { Count: > 0 } && i.Metadata.Finalizers is { Count: > 0 }, "reconciled");
        var deployment = await c.WaitForAsync<V1Deployment>(new ObjectKey(IsvcCluster.Ns, "qwen-chat-predictor"), _ => true, "Deployment");
        Assert.Contains("--n-gpu-layers=999", deployment.Spec.Template.Spec.Containers[0].Args);

        var stored = await c.GetIsvcJsonAsync("qwen-chat");
        Assert.True(JsonNode.DeepEquals(original["spec"], stored["spec"]), $"spec changed:\n{original["spec"]}\n---\n{stored["spec"]}");
        foreach (var map in new[] { "labels", "annotations" })
        {
            foreach (var (k, v) in original["metadata"]![map]!.AsObject())
            {
                Assert.Equal(v!.GetValue<string>(), stored["metadata"]![map]![k]!.GetValue<string>());
            }
        }
    }

    [Fact]
    public async Task Services_of_other_runtimes_are_left_alone()
    {
        await using var c = await IsvcCluster.StartAsync();
        await c.CreateIsvcAsync(Isvc("vllm", IsvcCluster.Ns, Uri, p => { p["model"]!["runtime"] = "kserve-vllmserver"; p["model"]!["modelFormat"]!["name"] = "vLLM"; }));
        await c.CreateIsvcAsync(Isvc("hf", IsvcCluster.Ns, Uri, p => p["model"]!["modelFormat"]!["name"] = "huggingface"));
        // With one worker, keys are reconciled in arrival order: once ours is done, the others have been seen.
        await c.CreateIsvcAsync(ChatIsvc());
        await c.WaitForAsync<InferenceService>(s_isvc, i => i.Status?.Conditions is { Count: > 0 }, "ours reconciled");

        foreach (var name in new[] { "vllm", "hf" })
        {
            var other = await c.GetIsvcJsonAsync(name);
            Assert.Null(other["status"]);
            Assert.Null(other["metadata"]!["finalizers"]);
            Assert.Null(await c.ClientFor<V1Deployment>().GetAsync(new ObjectKey(IsvcCluster.Ns, $"{name}-predictor")));
        }
    }

    [Theory]
    [InlineData("min-above-max", "InvalidPredictorSpec", "'MinReplicas' cannot be greater than MaxReplicas")]
    [InlineData("bad-scheme", "InvalidPredictorSpec", "StorageUri [ftp://host/model.gguf] is not supported")]
    [InlineData("unknown-runtime", "RuntimeNotRecognized", "\"my-triton\" is not known")]
    public async Task Bad_input_gets_a_clear_condition_and_no_children(string name, string reason, string message)
    {
        await using var c = await IsvcCluster.StartAsync(o => o.All = true);
        var isvc = Isvc(name, IsvcCluster.Ns, name == "bad-scheme" ? "ftp://host/model.gguf" : Uri, p =>
        {
            if (name == "min-above-max")
            {
                p["minReplicas"] = 3;
                p["maxReplicas"] = 1;
            }
            else if (name == "unknown-runtime")
            {
                p["model"]!["runtime"] = "my-triton";
            }
        });
        await c.CreateIsvcAsync(isvc);

        var got = await c.WaitForAsync<InferenceService>(new ObjectKey(IsvcCluster.Ns, name), i => IsvcCluster.Condition(i, "Ready")?.Status == "False", "Ready=False");
        var ready = IsvcCluster.Condition(got, "Ready")!;
        Assert.Equal(reason, ready.Reason);
        Assert.Contains(message, ready.Message, StringComparison.Ordinal);
        var key = new ObjectKey(IsvcCluster.Ns, $"{name}-predictor");
        Assert.Null(await c.ClientFor<V1Deployment>().GetAsync(key));
        Assert.Null(await c.ClientFor<V1Service>().GetAsync(key));
        Assert.Null(await c.ClientFor<V2HorizontalPodAutoscaler>().GetAsync(key));
    }

    [Fact]
    public async Task Negative_replicas_are_refused_by_the_api_with_the_field_named()
    {
        await using var c = await IsvcCluster.StartAsync();
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => c.CreateIsvcAsync(ChatIsvc(p => p["minReplicas"] = -1)));
        Assert.Equal(422, (int)e.Response.StatusCode);
        Assert.Contains("minReplicas", e.Response.Content, StringComparison.Ordinal);
        Assert.Null(await c.ClientFor<V1Deployment>().GetAsync(s_predictor));
    }

    [Fact]
    public async Task Without_a_cache_an_init_container_downloads_the_model_and_pods_run_at_once()
    {
        await using var c = await IsvcCluster.StartAsync();
        await c.CreateIsvcAsync(ChatIsvc());
        var deployment = await c.WaitForAsync<V1Deployment>(s_predictor, d => d.Spec.Replicas == 1, "Deployment");
        var init = Assert.Single(deployment.Spec.Template.Spec.InitContainers);
        Assert.Equal(["download", Uri, "/mnt/models"], init.Args);
        Assert.Null(deployment.Spec.Template.Spec.Affinity);
        var isvc = await c.WaitForAsync<InferenceService>(s_isvc, i => IsvcCluster.Condition(i, "ModelCached")?.Reason == "NoMatchingCache", "status");
        Assert.False(isvc.Metadata.Labels?.ContainsKey("internal.serving.kserve.io/localmodel") ?? false);

        // The Deployment becomes available (what the deployment controller would report): Ready follows.
        var status = new JsonObject { ["status"] = new JsonObject { ["replicas"] = 1, ["availableReplicas"] = 1, ["readyReplicas"] = 1 } };
        await c.ClientFor<V1Deployment>().PatchAsync(s_predictor, PatchKind.Merge, status.ToJsonString(), status: true);
        await c.WaitForAsync<InferenceService>(s_isvc, i => IsvcCluster.Condition(i, "Ready")?.Status == "True", "Ready");
    }
}
