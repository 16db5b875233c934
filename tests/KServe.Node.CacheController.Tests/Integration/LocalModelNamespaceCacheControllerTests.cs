using KServe.Node.Api;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;
using KServe.Node.Runtime;

namespace KServe.Node.CacheController.Tests.Integration;

/// <summary>KServe's "LocalModelNamespaceCache controller" envtest behaviours (spec §6.1, 6-11).</summary>
public sealed class LocalModelNamespaceCacheControllerTests
{
    private const string Ns = "test-ns";

    private static async Task<Harness> StartAsync()
    {
        var h = await Harness.StartAsync();
        await h.CreateNamespaceAsync(Ns);
        await h.CreateNamespaceAsync("other-ns");
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        return h;
    }

    [Fact]
    public async Task Namespace_cache_creates_download_volumes_node_entry_and_status_from_the_node()
    {
        await using var h = await StartAsync();
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.For<LocalModelNamespaceCache>().CreateAsync(Harness.NamespaceCache(Ns, "m", ["gpu1"]));

        await h.Pvs.WaitAsync(ObjectKey.Cluster($"m-gpu1-{Ns}-download"), _ => true, "download PV");
        await h.Pvcs.WaitAsync(new ObjectKey(Harness.JobNamespace, $"m-gpu1-{Ns}-download"), _ => true, "download PVC");
        var lmn = await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "m", Ns, "gpu1"), "namespaced entry");
        Assert.Equal(Ns, Assert.Single(lmn.Spec.LocalModels).Namespace);

        await h.SetModelStatusAsync("node-1", $"{Ns}/m", ModelStatus.ModelDownloaded);
        var cache = await h.NamespaceCaches.WaitAsync(new ObjectKey(Ns, "m"), c => c.Status?.Copies?.Available == 1, "1 copy");
        Assert.Equal((1, (int?)null), (cache.Status!.Copies!.Total, cache.Status.Copies.Failed));
        Assert.Equal(NodeStatus.NodeDownloaded, cache.Status.NodeStatus!["node-1"]);
    }

    [Fact]
    public async Task Namespace_cache_serves_only_inference_services_of_its_namespace()
    {
        await using var h = await StartAsync();
        await h.For<LocalModelNamespaceCache>().CreateAsync(Harness.NamespaceCache(Ns, "m", ["gpu1"]));
        await h.For<InferenceService>().CreateAsync(Consumers.Isvc(Ns, "same", "m", cacheNamespace: Ns));
        // Labelled for the namespace cache but living elsewhere: not a consumer.
        await h.For<InferenceService>().CreateAsync(Consumers.Isvc("other-ns", "elsewhere", "m", cacheNamespace: Ns));

        await h.Pvs.WaitAsync(ObjectKey.Cluster($"m-gpu1-{Ns}"), _ => true, "serving PV");
        var pvc = await h.Pvcs.WaitAsync(new ObjectKey(Ns, "m-gpu1"), _ => true, "serving PVC");
        Assert.Equal($"m-gpu1-{Ns}", pvc.Spec.VolumeName);
        var cache = await h.NamespaceCaches.WaitAsync(new ObjectKey(Ns, "m"), c => c.Status?.InferenceServices?.Count > 0, "isvc listed");
        Assert.Equal("same", Assert.Single(cache.Status!.InferenceServices!).Name);
        Assert.Null(await h.For<k8s.Models.V1PersistentVolumeClaim>().GetAsync(new ObjectKey("other-ns", "m-gpu1")));
    }

    [Fact]
    public async Task Namespace_cache_has_its_finalizer_and_deletion_completes()
    {
        await using var h = await StartAsync();
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.For<LocalModelNamespaceCache>().CreateAsync(Harness.NamespaceCache(Ns, "m", ["gpu1"]));
        await h.NamespaceCaches.WaitAsync(new ObjectKey(Ns, "m"), c => c.Metadata.Finalizers?.Contains(KServeFinalizers.LocalModelNamespaceCache) == true, "finalizer");
        await h.Pvcs.WaitAsync(new ObjectKey(Harness.JobNamespace, $"m-gpu1-{Ns}-download"), _ => true, "download PVC");
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "m", Ns), "entry");

        await h.For<LocalModelNamespaceCache>().DeleteAsync(new ObjectKey(Ns, "m"));
        await h.NamespaceCaches.WaitGoneAsync(new ObjectKey(Ns, "m"), "deleted");
        Assert.False(Harness.HasEntry(h.Lmns.Get(ObjectKey.Cluster("node-1"))!, "m", Ns));
        // The volumes a namespace cache cannot own are deleted under the finalizer.
        await h.Pvs.WaitGoneAsync(ObjectKey.Cluster($"m-gpu1-{Ns}-download"), "download PV deleted");
        await h.Pvcs.WaitGoneAsync(new ObjectKey(Harness.JobNamespace, $"m-gpu1-{Ns}-download"), "download PVC deleted");
    }

    [Fact]
    public async Task One_node_carries_entries_of_a_cluster_cache_and_a_namespace_cache()
    {
        await using var h = await StartAsync();
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("shared", ["gpu1"], "s3://mybucket/a"));
        await h.For<LocalModelNamespaceCache>().CreateAsync(Harness.NamespaceCache(Ns, "shared", ["gpu1"], "s3://mybucket/b"));
        var lmn = await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "shared") && Harness.HasEntry(n, "shared", Ns), "both entries");
        Assert.Equal(2, lmn.Spec.LocalModels.Count);
    }

    [Fact]
    public async Task Namespace_cache_download_PV_has_no_owner_references()
    {
        await using var h = await StartAsync();
        await h.For<LocalModelNamespaceCache>().CreateAsync(Harness.NamespaceCache(Ns, "m", ["gpu1"]));
        var pv = await h.Pvs.WaitAsync(ObjectKey.Cluster($"m-gpu1-{Ns}-download"), _ => true, "download PV");
        await h.NamespaceCaches.WaitAsync(new ObjectKey(Ns, "m"), c => c.Metadata.Finalizers?.Contains(KServeFinalizers.LocalModelNamespaceCache) == true, "finalizer");
        Assert.True(pv.Metadata.OwnerReferences is null || pv.Metadata.OwnerReferences.Count == 0);
    }

    [Fact]
    public async Task Namespace_cache_lists_an_inference_service_and_drops_it_when_it_goes()
    {
        await using var h = await StartAsync();
        await h.For<LocalModelNamespaceCache>().CreateAsync(Harness.NamespaceCache(Ns, "m", ["gpu1"]));
        await h.For<InferenceService>().CreateAsync(Consumers.Isvc(Ns, "foo", "m", cacheNamespace: Ns));
        await h.Pvcs.WaitAsync(new ObjectKey(Ns, "m-gpu1"), _ => true, "serving PVC");
        await h.NamespaceCaches.WaitAsync(new ObjectKey(Ns, "m"), c => c.Status?.InferenceServices?.Count == 1, "isvc listed");

        await h.For<InferenceService>().DeleteAsync(new ObjectKey(Ns, "foo"));
        await h.NamespaceCaches.WaitAsync(new ObjectKey(Ns, "m"), c => c.Status?.InferenceServices is null, "isvc dropped");
        await h.Pvcs.WaitGoneAsync(new ObjectKey(Ns, "m-gpu1"), "serving PVC removed");
        await h.Pvs.WaitGoneAsync(ObjectKey.Cluster($"m-gpu1-{Ns}"), "serving PV removed");
    }
}
