using k8s.Models;
using KServe.Node.Api;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.CacheController.Model;
using KServe.Node.Runtime;

namespace KServe.Node.CacheController.Tests.Integration;

/// <summary>Behaviours beyond KServe's controller (its gaps, spec §2.8, §2.9, §7), against the test API server.</summary>
public sealed class BeyondKServeTests
{
    private static V1Condition? Condition(LocalModelCache c, string type) => c.Status?.Conditions?.FirstOrDefault(x => x.Type == type);

    private static bool Is(LocalModelCache c, string type, string status) => Condition(c, type)?.Status == status;

    [Fact]
    public async Task A_model_larger_than_the_group_storage_limit_is_not_placed_and_the_cache_says_StorageLimitExceeded()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("small", "gpu1", storageLimit: "2Gi"));
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("big", ["small"], size: "123Gi"));

        var cache = await h.Caches.WaitAsync(ObjectKey.Cluster("big"), c => Is(c, CacheConditions.StorageLimitExceeded, "True"), "StorageLimitExceeded");
        var condition = Condition(cache, CacheConditions.StorageLimitExceeded)!;
        Assert.Equal("ModelDoesNotFit", condition.Reason);
        Assert.Contains("123Gi", condition.Message, StringComparison.Ordinal);
        Assert.Contains("node-1", condition.Message, StringComparison.Ordinal);
        Assert.True(Is(cache, CacheConditions.Ready, "False"));
        Assert.Null(cache.Status!.NodeStatus);
        Assert.Null(h.Lmns.Get(ObjectKey.Cluster("node-1")));
    }

    [Fact]
    public async Task Models_on_a_node_stay_within_the_storage_limit_and_a_freed_place_is_taken()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("g", "gpu1", storageLimit: "10Gi"));
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("first", ["g"], "s3://b/first", "6Gi"));
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "first"), "first placed");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("second", ["g"], "s3://b/second", "5Gi"));

        await h.Caches.WaitAsync(ObjectKey.Cluster("second"), c => Is(c, CacheConditions.StorageLimitExceeded, "True"), "second does not fit");
        Assert.False(Harness.HasEntry(h.Lmns.Get(ObjectKey.Cluster("node-1"))!, "second"));
        await h.Groups.WaitAsync(ObjectKey.Cluster("g"), g => g.Status?.Used?.ToString() == "6Gi" && g.Status.Available?.ToString() == "4Gi", "group status used/available");

        await h.For<LocalModelCache>().DeleteAsync(ObjectKey.Cluster("first"));
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "second") && !Harness.HasEntry(n, "first"), "second placed");
        await h.Caches.WaitAsync(ObjectKey.Cluster("second"), c => Is(c, CacheConditions.StorageLimitExceeded, "False"), "fits now");
    }

    [Fact]
    public async Task Deleted_nodes_disappear_from_nodeStatus_and_copies_and_their_LocalModelNode_goes_with_them()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        var node1 = await h.CreateNodeAsync("node-1", "gpu1");
        await h.CreateNodeAsync("node-2", "gpu1");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris", ["gpu1"]));
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies?.Total == 2, "2 nodes");
        var lmn = await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "iris"), "entry");
        var owner = Assert.Single(lmn.Metadata.OwnerReferences);
        Assert.Equal(("Node", "node-1", node1.Metadata.Uid), (owner.Kind, owner.Name, owner.Uid));

        await h.For<V1Node>().DeleteAsync(ObjectKey.Cluster("node-2"));
        var cache = await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies?.Total == 1, "1 node");
        Assert.False(cache.Status!.NodeStatus!.ContainsKey("node-2"));
        await h.Lmns.WaitGoneAsync(ObjectKey.Cluster("node-2"), "LocalModelNode of the deleted node");
    }

    [Fact]
    public async Task A_node_that_leaves_the_group_loses_the_model_and_leaves_the_status()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.CreateNodeAsync("node-2", "gpu1");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris", ["gpu1"]));
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies?.Total == 2, "2 nodes");
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-2"), n => Harness.HasEntry(n, "iris"), "entry");

        await h.For<V1Node>().PatchAsync(ObjectKey.Cluster("node-2"), PatchKind.Merge,
            """{"metadata":{"labels":{"node.kubernetes.io/instance-type":"cpu"}}}""");
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies?.Total == 1 && !c.Status.NodeStatus!.ContainsKey("node-2"), "node-2 gone from status");
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-2"), n => !Harness.HasEntry(n, "iris"), "entry removed");
    }

    [Fact]
    public async Task Removing_a_group_from_a_cache_removes_the_model_from_that_groups_nodes_and_its_volumes()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu2", "gpu2"));
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.CreateNodeAsync("node-2", "gpu2");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris", ["gpu1", "gpu2"]));
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-2"), n => Harness.HasEntry(n, "iris", group: "gpu2"), "entry on gpu2");
        await h.Pvs.WaitAsync(ObjectKey.Cluster("iris-gpu2-download"), _ => true, "gpu2 download PV");
        await h.Pvcs.WaitAsync(new ObjectKey(Harness.JobNamespace, "iris-gpu2"), _ => true, "gpu2 download PVC");

        await h.For<LocalModelCache>().PatchAsync(ObjectKey.Cluster("iris"), PatchKind.Merge, """{"spec":{"nodeGroups":["gpu1"]}}""");
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-2"), n => !Harness.HasEntry(n, "iris"), "entry removed from gpu2 node");
        await h.Pvs.WaitGoneAsync(ObjectKey.Cluster("iris-gpu2-download"), "gpu2 download PV deleted");
        await h.Pvcs.WaitGoneAsync(new ObjectKey(Harness.JobNamespace, "iris-gpu2"), "gpu2 download PVC deleted");
        Assert.True(Harness.HasEntry(h.Lmns.Get(ObjectKey.Cluster("node-1"))!, "iris", group: "gpu1"));
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies?.Total == 1, "status over gpu1 only");
    }

    [Fact]
    public async Task A_node_group_deleted_first_does_not_wedge_cache_deletion()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris", ["gpu1"]));
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "iris"), "entry");

        await h.For<LocalModelNodeGroup>().DeleteAsync(ObjectKey.Cluster("gpu1"));
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => Condition(c, CacheConditions.Degraded)?.Reason == "NodeGroupNotFound", "Degraded: group missing");
        await h.For<LocalModelCache>().DeleteAsync(ObjectKey.Cluster("iris"));
        await h.Caches.WaitGoneAsync(ObjectKey.Cluster("iris"), "cache deleted");
        Assert.False(Harness.HasEntry(h.Lmns.Get(ObjectKey.Cluster("node-1"))!, "iris"));
    }

    [Fact]
    public async Task Conditions_follow_the_nodes_with_observedGeneration_and_Events_on_transitions()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris", ["gpu1"]));
        var pending = await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => Condition(c, CacheConditions.Ready)?.Reason == "Downloading", "downloading");
        Assert.Equal(pending.Metadata.Generation, pending.Status!.ObservedGeneration);
        Assert.All(pending.Status.Conditions!, c => Assert.Equal(pending.Metadata.Generation, c.ObservedGeneration));

        await h.SetModelStatusAsync("node-1", "iris", ModelStatus.ModelDownloaded);
        var ready = await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => Is(c, CacheConditions.Ready, "True"), "Ready");
        var readySince = Condition(ready, CacheConditions.Ready)!.LastTransitionTime;

        await h.SetModelStatusAsync("node-1", "iris", ModelStatus.ModelDownloadError);
        var degraded = await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => Is(c, CacheConditions.Degraded, "True"), "Degraded");
        Assert.Equal("DownloadFailed", Condition(degraded, CacheConditions.Degraded)!.Reason);
        Assert.Equal(1, degraded.Status!.Copies!.Failed);
        Assert.NotEqual(readySince, Condition(degraded, CacheConditions.Ready)!.LastTransitionTime);

        await using var events = await Observer<Corev1Event>.StartAsync(h.Client);
        await events.WaitAnyAsync(e => e.InvolvedObject?.Name == "iris" && e.Reason == "DownloadFailed" && e.Type == "Warning", "Warning DownloadFailed event");
        await events.WaitAnyAsync(e => e.InvolvedObject?.Name == "iris" && e.Reason == "AllCopiesAvailable" && e.Type == "Normal", "Normal AllCopiesAvailable event");
    }

    [Fact]
    public async Task A_NotReady_node_shows_NodeNotReady_and_gets_no_new_model()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.CreateNodeAsync("node-1", "gpu1", ready: false);
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris", ["gpu1"]));
        var cache = await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => (c.Status?.NodeStatus is { } ns1 && ns1.TryGetValue("node-1", out var v1) ? v1 : null) == NodeStatus.NodeNotReady, "NodeNotReady");
        Assert.Equal(1, cache.Status!.Copies!.Total);
        Assert.Null(h.Lmns.Get(ObjectKey.Cluster("node-1")));

        await h.SetNodeReadyAsync("node-1", true);
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "iris"), "entry once Ready");
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => (c.Status?.NodeStatus is { } ns1 && ns1.TryGetValue("node-1", out var v1) ? v1 : null) == NodeStatus.NodeDownloadPending, "pending");
    }

    [Fact]
    public async Task Nodes_holding_a_downloaded_model_carry_its_placement_label_until_the_model_goes()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.CreateNodeAsync("node-1", "gpu1");
        await h.CreateNodeAsync("node-2", "gpu1");
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris", ["gpu1"]));
        await h.Lmns.WaitAsync(ObjectKey.Cluster("node-1"), n => Harness.HasEntry(n, "iris"), "entry");
        var label = PlacementLabels.ForUri("s3://mybucket/mymodel");

        await h.SetModelStatusAsync("node-1", "iris", ModelStatus.ModelDownloaded);
        await h.SetModelStatusAsync("node-2", "iris", ModelStatus.ModelDownloading);
        await h.Nodes.WaitAsync(ObjectKey.Cluster("node-1"), n => (n.Metadata.Labels is { } l1 && l1.TryGetValue(label, out var lv) ? lv : null) == "true", "placement label on node-1");
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies?.Available == 1, "1 available");
        Assert.False(h.Nodes.Get(ObjectKey.Cluster("node-2"))!.Metadata.Labels?.ContainsKey(label) ?? false);

        await h.For<LocalModelCache>().DeleteAsync(ObjectKey.Cluster("iris"));
        await h.Nodes.WaitAsync(ObjectKey.Cluster("node-1"), n => n.Metadata.Labels?.ContainsKey(label) != true, "placement label removed");
    }

    [Fact]
    public async Task Status_is_written_only_when_it_changes_and_no_reconcile_lists_all_nodes()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu2", "gpu2"));
        for (var i = 0; i < 6; i++)
        {
            await h.CreateNodeAsync($"node-{i}", i % 2 == 0 ? "gpu1" : "gpu2");
        }

        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("iris", ["gpu1", "gpu2"]));
        for (var i = 0; i < 6; i++)
        {
            await h.Lmns.WaitAsync(ObjectKey.Cluster($"node-{i}"), n => Harness.HasEntry(n, "iris"), "entry");
            await h.SetModelStatusAsync($"node-{i}", "iris", ModelStatus.ModelDownloaded);
        }

        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies?.Available == 6, "6 available");
        // Unrelated node churn (a label that matters to no group) and a node going NotReady and back.
        await h.For<V1Node>().PatchAsync(ObjectKey.Cluster("node-0"), PatchKind.Merge, """{"metadata":{"labels":{"zone":"a"}}}""");
        await h.SetNodeReadyAsync("node-1", false);
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.NodeStatus?["node-1"] == NodeStatus.NodeNotReady, "node-1 NotReady");
        await h.SetNodeReadyAsync("node-1", true);
        await h.Caches.WaitAsync(ObjectKey.Cluster("iris"), c => c.Status?.Copies?.Available == 6, "6 available again");

        var history = h.Caches.History(ObjectKey.Cluster("iris"));
        for (var i = 1; i < history.Count; i++)
        {
            Assert.True(history[i] != history[i - 1], $"write {i} changed nothing: {history[i]}");
        }

        var controllerRequests = h.Server.Requests.Where(r => r.UserAgent == Harness.ControllerAgent).ToList();
        var nodeLists = controllerRequests.Count(r => r.Group is null or "" && r.Resource == "nodes" && r.Verb == "list");
        var nodeGets = controllerRequests.Count(r => r.Group is null or "" && r.Resource == "nodes" && r.Verb == "get");
        Assert.Contains(controllerRequests, r => r.Resource == "nodes" && r.Verb == "watch");
        Assert.True(nodeLists <= 1, $"the controller listed all nodes {nodeLists} times (the informer's initial list is the only one allowed)");
        Assert.Equal(0, nodeGets);
    }
}
