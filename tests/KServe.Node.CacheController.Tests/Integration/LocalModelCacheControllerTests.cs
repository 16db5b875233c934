using k8s.Models;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;
using KServe.Node.CacheController.Controllers;
using KServe.Node.Runtime;

namespace KServe.Node.CacheController.Tests.Integration;

/// <summary>KServe's "CachedModel controller" envtest behaviours (spec §6.1, 1-5), against the test API server over HTTP.</summary>
public sealed class LocalModelCacheControllerTests
{
    private static readonly ObjectKey Jobs = new(Harness.JobNamespace, "");

    [Fact]
    public async Task Should_create_pv_pvc_localmodelnode_and_update_status_from_localmodelnode()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu2", "gpu2"));
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris", ["gpu1", "gpu2"]));

        var pv = await h.Pvs.WaitAsync(ObjectKey.Cluster("iris-gpu1-download"), _ => true, "download PV");
        await h.Pvs.WaitAsync(ObjectKey.Cluster("iris-gpu2-download"), _ => true, "download PV");
        var pvc = await h.Pvcs.WaitAsync(new ObjectKey(Harness.JobNamespace, "iris-gpu1"), _ => true, "download PVC");
        await h.Pvcs.WaitAsync(new ObjectKey(Harness.JobNamespace, "iris-gpu2"), _ => true, "download PVC");
        Assert.Equal("iris-gpu1-download", pvc.Spec.VolumeName);
        Assert.Equal("LocalModelCache", Assert.Single(pv.Metadata.OwnerReferences).Kind);
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies is not null, "status.copies set");

        await h.CreateNodeAsync("node-1", "gpu1");
        await h.CreateNodeAsync("node-2", "gpu2");
        var n1 = await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "iris", group: "gpu1"), "entry iris/gpu1");
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-2"), n => Harness.HasEntry(n, "iris", group: "gpu2"), "entry iris/gpu2");
        Assert.Equal("s3://mybucket/mymodel", Assert.Single(n1.Spec.LocalModels).SourceModelUri);

        await h.SetModelStatusAsync("node-1", "iris", ModelStatus.ModelDownloaded);
        await h.SetModelStatusAsync("node-2", "iris", ModelStatus.ModelDownloaded);
        var cache = await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies?.Available == 2, "2 copies available");
        Assert.Equal(2, cache.Status!.Copies!.Total);
        Assert.Null(cache.Status.Copies.Failed);
        Assert.Equal(NodeStatus.NodeDownloaded, cache.Status.NodeStatus!["node-1"]);
        Assert.Equal(NodeStatus.NodeDownloaded, cache.Status.NodeStatus["node-2"]);

        await h.For<LocalModelCache>().DeleteAsync(ObjectKey.Cluster("iris"));
        await h.Caches.WaitGoneAsync(ObjectKey.Cluster("iris"), "cache deleted (finalizer completed)");
    }

    [Fact]
    public async Task Should_create_pvs_and_pvcs_for_inference_services()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu2", "gpu2"));
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris2", ["gpu1", "gpu2"]));
        await h.For<InferenceService>().CreateAsync(Consumers.Isvc("default", "foo", "iris2"));
        await h.For<InferenceService>().CreateAsync(Consumers.Isvc("default", "bar", "iris2", nodeGroup: "gpu2"));

        await h.Pvs.WaitAsync(ObjectKey.Cluster("iris2-gpu1-default"), _ => true, "serving PV for the default group");
        await h.Pvs.WaitAsync(ObjectKey.Cluster("iris2-gpu2-default"), _ => true, "serving PV for the annotated group");
        var pvc = await h.Pvcs.WaitAsync(new ObjectKey("default", "iris2-gpu1"), _ => true, "serving PVC");
        await h.Pvcs.WaitAsync(new ObjectKey("default", "iris2-gpu2"), _ => true, "serving PVC");
        Assert.Equal("iris2-gpu1-default", pvc.Spec.VolumeName);
        var cache = await h.Caches.WaitAsync(ObjectKey.Cluster("iris2"), c => c.Status?.InferenceServices?.Count == 2, "both isvcs listed");
        Assert.Equal(["bar", "foo"], cache.Status!.InferenceServices!.Select(i => i.Name));

        // The last consumer leaving the namespace removes its serving claims (KServe's cleanup).
        await h.For<InferenceService>().DeleteAsync(new ObjectKey("default", "foo"));
        await h.For<InferenceService>().DeleteAsync(new ObjectKey("default", "bar"));
        await h.Pvcs.WaitGoneAsync(new ObjectKey("default", "iris2-gpu1"), "serving PVC removed");
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris2"), c => c.Status?.InferenceServices is null, "no isvc listed");
    }

    [Fact]
    public async Task Should_track_LLMInferenceService_in_cluster_scoped_cache_status()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("llm-cache", ["gpu1"]));
        await h.For<LlmInferenceServiceMetadata>().CreateAsync(Consumers.LlmIsvc("default", "my-llm", "llm-cache"));
        var cache = await h.Caches.WaitAsync(ObjectKey.Cluster("llm-cache"), c => c.Status?.LlmInferenceServices?.Count == 1, "LLMISVC listed");
        Assert.Equal(("default", "my-llm"), (cache.Status!.LlmInferenceServices![0].Namespace, cache.Status.LlmInferenceServices[0].Name));
        await h.Pvcs.WaitAsync(new ObjectKey("default", "llm-cache-gpu1"), _ => true, "serving PVC for the LLMISVC");
    }

    [Fact]
    public async Task Should_NOT_create_or_delete_pvs_and_pvcs_if_DisableVolumeManagement_is_true()
    {
        var owned = new List<string>();
        await using var h = await Harness.StartAsync(
            new Dictionary<string, string> { ["CacheController:DisableVolumeManagement"] = "true" },
            async h =>
            {
                await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
                var cache = await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris3", ["gpu1"]));
                var owner = new V1OwnerReference { ApiVersion = "serving.kserve.io/v1alpha1", Kind = "LocalModelCache", Name = "iris3", Uid = cache.Metadata.Uid, Controller = true };
                await h.For<V1PersistentVolume>().CreateAsync(new V1PersistentVolume
                {
                    Metadata = new V1ObjectMeta { Name = "test-pvc-test-namespace", OwnerReferences = [owner] },
                    Spec = Harness.Group("x", "x").Spec.PersistentVolumeSpec,
                });
                await h.For<V1PersistentVolumeClaim>().CreateAsync(new V1PersistentVolumeClaim
                {
                    Metadata = new V1ObjectMeta { Name = "test-pvc", NamespaceProperty = "default", OwnerReferences = [owner] },
                    Spec = Harness.Group("x", "x").Spec.PersistentVolumeClaimSpec,
                });
                await h.For<InferenceService>().CreateAsync(Consumers.Isvc("default", "foo", "iris3"));
            });

        await h.Caches.WaitAsync(ObjectKey.Cluster("iris3"), c => c.Status?.Copies is not null, "reconciled");
        await h.Pvcs.WaitAsync(new ObjectKey(Harness.JobNamespace, "iris3-gpu1"), _ => true, "download PVC still made");
        Assert.NotNull(await h.For<V1PersistentVolume>().GetAsync(ObjectKey.Cluster("test-pvc-test-namespace")));
        Assert.NotNull(await h.For<V1PersistentVolumeClaim>().GetAsync(new ObjectKey("default", "test-pvc")));
        Assert.Null(await h.For<V1PersistentVolumeClaim>().GetAsync(new ObjectKey("default", "iris3-gpu1")));
        Assert.Null(h.Caches.Get(ObjectKey.Cluster("iris3"))!.Status!.InferenceServices);
    }

    [Fact]
    public async Task Multiple_localModels_should_create_localModelNode_correctly()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1", storageLimit: "1Ti"));
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu2", "gpu2", storageLimit: "1Ti"));
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.CreateNodeAsync("node-2", "gpu2");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("model1", ["gpu1", "gpu2"], "s3://mybucket/model1"));
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("model2", ["gpu1", "gpu2"], "s3://mybucket/model2"));

        foreach (var node in new[] { "node-1", "node-2" })
        {
            await h.Lmns.WaitAsync(ObjectKey.Cluster(node), n => n.Spec.LocalModels.Count == 2, "2 entries");
        }

        await h.For<LocalModelCache>().DeleteAsync(ObjectKey.Cluster("model1"));
        foreach (var node in new[] { "node-1", "node-2" })
        {
            var n = await h.Lmns.WaitAsync(ObjectKey.Cluster(node), n => n.Spec.LocalModels.Count == 1, "1 entry");
            Assert.Equal("model2", n.Spec.LocalModels[0].ModelName);
        }

        await h.For<LocalModelCache>().DeleteAsync(ObjectKey.Cluster("model2"));
        foreach (var node in new[] { "node-1", "node-2" })
        {
            await h.Lmns.WaitAsync(ObjectKey.Cluster(node), n => n.Spec.LocalModels.Count == 0, "no entries");
        }

        await h.Caches.WaitGoneAsync(ObjectKey.Cluster("model1"), "model1 gone");
        await h.Caches.WaitGoneAsync(ObjectKey.Cluster("model2"), "model2 gone");
    }
}
