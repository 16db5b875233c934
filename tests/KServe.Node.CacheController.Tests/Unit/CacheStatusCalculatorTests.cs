using k8s.Models;
using KServe.Node.CacheController.Model;

namespace KServe.Node.CacheController.Tests.Unit;

public sealed class CacheStatusCalculatorTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private static readonly DateTime T1 = T0.AddMinutes(5);

    private static V1Condition Get(CacheStatusResult r, string type) => r.Conditions.Single(c => c.Type == type);

    [Fact]
    public void Copies_count_downloaded_total_and_failed_over_the_member_nodes()
    {
        var r = CacheStatusCalculator.Compute(
        [
            new MemberNode("a", true, "ModelDownloaded"),
            new MemberNode("b", true, "ModelDownloadError"),
            new MemberNode("c", true, "ModelDownloading"),
            new MemberNode("d", true, null),
            new MemberNode("e", false, "ModelDownloaded"),
        ], [], null, 3, T0);
        Assert.Equal((1, 5, 1), (r.Available, r.Total, r.Failed));
        Assert.Equal("NodeDownloaded", r.NodeStatus["a"]);
        Assert.Equal("NodeDownloadError", r.NodeStatus["b"]);
        Assert.Equal("NodeDownloading", r.NodeStatus["c"]);
        Assert.Equal("NodeDownloadPending", r.NodeStatus["d"]);
        Assert.Equal("NodeNotReady", r.NodeStatus["e"]);
        Assert.Equal("False", Get(r, "Ready").Status);
        Assert.Equal("Downloading", Get(r, "Ready").Reason);
        Assert.Equal("True", Get(r, "Degraded").Status);
        Assert.Contains("b", Get(r, "Degraded").Message, StringComparison.Ordinal);
        Assert.All(r.Conditions, c => Assert.Equal(3, c.ObservedGeneration));
    }

    [Fact]
    public void Ready_when_every_member_node_holds_the_model()
    {
        var r = CacheStatusCalculator.Compute([new MemberNode("a", true, "ModelDownloaded"), new MemberNode("b", true, "ModelDownloaded")], [], null, 1, T0);
        Assert.Equal("True", Get(r, "Ready").Status);
        Assert.Equal("AllCopiesAvailable", Get(r, "Ready").Reason);
        Assert.Equal("False", Get(r, "Degraded").Status);
        Assert.Equal("False", Get(r, "StorageLimitExceeded").Status);
    }

    [Fact]
    public void Nodes_that_are_gone_are_simply_absent()
    {
        var before = CacheStatusCalculator.Compute([new MemberNode("a", true, "ModelDownloaded"), new MemberNode("b", true, "ModelDownloaded")], [], null, 1, T0);
        var after = CacheStatusCalculator.Compute([new MemberNode("a", true, "ModelDownloaded")], [], before.Conditions, 1, T1);
        Assert.Equal(2, before.Total);
        Assert.Equal(1, after.Total);
        Assert.False(after.NodeStatus.ContainsKey("b"));
    }

    [Fact]
    public void A_rejected_node_is_not_counted_and_raises_StorageLimitExceeded()
    {
        var rejection = new StorageRejection("gpu1", 3L << 30, 0, 2L << 30);
        var r = CacheStatusCalculator.Compute([new MemberNode("a", true, null, rejection), new MemberNode("b", true, "ModelDownloaded")], [], null, 1, T0);
        Assert.Equal((1, 1), (r.Available, r.Total));
        var c = Get(r, "StorageLimitExceeded");
        Assert.Equal("True", c.Status);
        Assert.Equal("ModelDoesNotFit", c.Reason);
        Assert.Contains("3Gi", c.Message, StringComparison.Ordinal);
        Assert.Contains("2Gi", c.Message, StringComparison.Ordinal);
        Assert.Equal("False", Get(r, "Ready").Status);
    }

    [Fact]
    public void Missing_node_groups_make_the_cache_degraded()
    {
        var r = CacheStatusCalculator.Compute([], ["gone"], null, 1, T0);
        Assert.Equal("NodeGroupNotFound", Get(r, "Degraded").Reason);
        Assert.Equal("NoMemberNodes", Get(r, "Ready").Reason);
    }

    [Fact]
    public void Transition_time_moves_only_when_the_status_flips()
    {
        var first = CacheStatusCalculator.Compute([new MemberNode("a", true, "ModelDownloading")], [], null, 1, T0);
        var same = CacheStatusCalculator.Compute([new MemberNode("a", true, null)], [], first.Conditions, 2, T1);
        Assert.Equal(T0, Get(same, "Ready").LastTransitionTime);
        Assert.Equal(2, Get(same, "Ready").ObservedGeneration);
        var flipped = CacheStatusCalculator.Compute([new MemberNode("a", true, "ModelDownloaded")], [], same.Conditions, 2, T1);
        Assert.Equal(T1, Get(flipped, "Ready").LastTransitionTime);
        Assert.Equal(T0, Get(flipped, "Degraded").LastTransitionTime);
        Assert.Equal(["Ready"], ConditionSet.Flipped(same.Conditions, flipped.Conditions).Select(c => c.Type));
    }
}
