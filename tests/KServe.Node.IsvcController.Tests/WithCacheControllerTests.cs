using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;
using KServe.Node.Runtime;
using KServe.Node.TestKit;
using static KServe.Node.IsvcController.Tests.Samples;

namespace KServe.Node.IsvcController.Tests;

/// <summary>
/// This controller with the real cache-controller (its own process) on the same test API server; the test plays
/// only the node agents (LocalModelNode status), as they would report.
/// </summary>
public sealed class WithCacheControllerTests
{
    private const string Uri = "hf://org/llama-gguf";

    private static async Task AddReadyNodeAsync(IsvcCluster c, string name)
    {
        var nodes = c.ClientFor<V1Node>();
        var node = await nodes.CreateAsync(new V1Node { Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["pool"] = "gpu" } } });
        node.Status = new V1NodeStatus { Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }] };
        await nodes.ReplaceStatusAsync(node);
    }

    private static async Task ReportAsync(IsvcCluster c, string node, string modelStatus)
    {
        var lmn = await c.WaitForAsync<LocalModelNode>(ObjectKey.Cluster(node), n => n.Spec.LocalModels.Any(m => m.ModelName == "llama"), $"LocalModelNode {node}");
        lmn.Status ??= new LocalModelNodeStatus();
        lmn.Status.ModelStatus = new Dictionary<string, string> { ["llama"] = modelStatus };
        await c.ClientFor<LocalModelNode>().ReplaceStatusAsync(lmn);
    }

    [Fact]
    public async Task Placement_bookkeeping_and_cleanup_work_with_the_real_cache_controller()
    {
        await using var c = await IsvcCluster.StartAsync();
        await c.Client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "kserve-localmodel-jobs" } });
        await using var cacheController = CacheControllerProcess.Start(c.Server);
        try
        {
            await c.ClientFor<LocalModelNodeGroup>().CreateAsync(new LocalModelNodeGroup
            {
                Metadata = new V1ObjectMeta { Name = "gpu" },
                Spec = k8s.KubernetesJson.Deserialize<LocalModelNodeGroupSpec>("""
                    {"storageLimit":"10Gi",
                     "persistentVolumeSpec":{"accessModes":["ReadWriteOnce"],"capacity":{"storage":"10Gi"},"storageClassName":"local-storage",
                       "local":{"path":"/models"},
                       "nodeAffinity":{"required":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"pool","operator":"In","values":["gpu"]}]}]}}},
                     "persistentVolumeClaimSpec":{"accessModes":["ReadWriteOnce"],"storageClassName":"local-storage","resources":{"requests":{"storage":"10Gi"}}}}
                    """),
            });
            foreach (var n in new[] { "n1", "n2", "n3" })
            {
                await AddReadyNodeAsync(c, n);
            }

            await c.CreateCacheAsync("llama", Uri, ["gpu"]);
            await ReportAsync(c, "n1", "ModelDownloaded");
            await ReportAsync(c, "n2", "ModelDownloading");
            await ReportAsync(c, "n3", "ModelDownloadPending");

            await c.CreateIsvcAsync(Isvc("chat", IsvcCluster.Ns, Uri));
            var predictor = new ObjectKey(IsvcCluster.Ns, "chat-predictor");
            var deployment = await c.WaitForAsync<V1Deployment>(predictor, d => d.Spec.Replicas == 1, "Deployment scaled to 1");
            await c.WaitForAsync<V1Node>(ObjectKey.Cluster("n1"), n => n.Metadata.Labels?.ContainsKey(Api.PlacementLabels.ForUri(Uri)) == true, "placement label on n1");
            Assert.Equal(["n1"], await c.EligibleNodesAsync(deployment.Spec.Template.Spec));

            // The cache-controller's bookkeeping: the service is listed on the cache and its serving PVC exists.
            await c.WaitForAsync<LocalModelCache>(ObjectKey.Cluster("llama"), k => k.Status?.InferenceServices?.Any(i => i.Name == "chat" && i.Namespace == IsvcCluster.Ns) == true, "cache lists the service");
            await c.WaitForAsync<V1PersistentVolumeClaim>(new ObjectKey(IsvcCluster.Ns, "llama-gpu"), _ => true, "serving PVC");

            // A second node finishes: it becomes eligible, the pod template does not change.
            var template = IsvcCluster.Json(deployment.Spec.Template).ToJsonString();
            await ReportAsync(c, "n2", "ModelDownloaded");
            await c.WaitForAsync<InferenceService>(new ObjectKey(IsvcCluster.Ns, "chat"),
                i => IsvcCluster.Condition(i, "ModelCached")?.Message?.Contains("2 of 3 nodes", StringComparison.Ordinal) == true, "2 of 3");
            await c.WaitForAsync<V1Node>(ObjectKey.Cluster("n2"), n => n.Metadata.Labels?.ContainsKey(Api.PlacementLabels.ForUri(Uri)) == true, "placement label on n2");
            var after = (await c.ClientFor<V1Deployment>().GetAsync(predictor))!;
            Assert.Equal(template, IsvcCluster.Json(after.Spec.Template).ToJsonString());
            Assert.Equal(["n1", "n2"], await c.EligibleNodesAsync(after.Spec.Template.Spec));

            // Deleting the service cleans its children and the cache's bookkeeping.
            await c.Client.CustomObjects.DeleteNamespacedCustomObjectAsync("serving.kserve.io", "v1beta1", IsvcCluster.Ns, "inferenceservices", "chat");
            await c.WaitGoneAsync<V1Deployment>(predictor, "Deployment");
            await c.WaitGoneAsync<InferenceService>(new ObjectKey(IsvcCluster.Ns, "chat"), "InferenceService");
            await c.WaitForAsync<LocalModelCache>(ObjectKey.Cluster("llama"), k => k.Status?.InferenceServices is null or { Count: 0 }, "cache no longer lists the service");
            await c.WaitGoneAsync<V1PersistentVolumeClaim>(new ObjectKey(IsvcCluster.Ns, "llama-gpu"), "serving PVC");
        }
        catch (Exception e) when (e is TimeoutException or Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException($"{e.Message}\ncache-controller output:\n{cacheController.Output}", e);
        }
    }
}
