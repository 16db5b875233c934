using KServe.Node.IsvcController.Placement;
using static KServe.Node.IsvcController.Tests.Samples;

namespace KServe.Node.IsvcController.Tests;

public sealed class CacheReadinessTests
{
    private static CacheMatch MatchOf(CacheView cache, string group = "gpu") =>
        new() { Cache = cache, NodeGroup = group, SubPath = "" };

    [Fact]
    public void One_of_three_nodes_done_allows_pods_and_reports_the_others_progress()
    {
        var cache = Cache("llama", "hf://o/m", ["gpu"], nodes: new()
        {
            ["node-a"] = "NodeDownloaded", ["node-b"] = "NodeDownloading", ["node-c"] = "NodeDownloadPending",
        });
        var entries = new Dictionary<string, NodeEntryView>
        {
            ["node-b"] = new() { Node = "node-b", NodeGroup = "gpu", BytesDone = 512L << 20, BytesTotal = 1L << 30 },
        };

        var state = CacheReadiness.Compute(MatchOf(cache), entries);

        Assert.True(state.AnyNodeHoldsModel);
        Assert.Equal((1, 3, 0), (state.Available, state.Total, state.Failed));
        Assert.Equal(CacheState.Cached, state.Reason);
        Assert.Contains("1 of 3 nodes", state.Message, StringComparison.Ordinal);
        Assert.Contains("node-b downloading 50% (512 MiB of 1 GiB)", state.Message, StringComparison.Ordinal);
        Assert.Contains("node-c pending", state.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Failure_on_every_node_says_so_with_the_agents_reasons()
    {
        var cache = Cache("llama", "hf://o/m", ["gpu"], nodes: new() { ["n1"] = "NodeDownloadError", ["n2"] = "NodeDownloadError" });
        var entries = new Dictionary<string, NodeEntryView>
        {
            ["n1"] = new() { Node = "n1", NodeGroup = "gpu", Message = "404 repository not found" },
        };

        var state = CacheReadiness.Compute(MatchOf(cache), entries);

        Assert.False(state.AnyNodeHoldsModel);
        Assert.Equal(CacheState.DownloadFailed, state.Reason);
        Assert.Contains("failed on all 2 nodes", state.Message, StringComparison.Ordinal);
        Assert.Contains("n1 failed: 404 repository not found", state.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Downloading_everywhere_keeps_pods_off_and_names_the_progress()
    {
        var cache = Cache("llama", "hf://o/m", ["gpu"], nodes: new() { ["n1"] = "NodeDownloading", ["n2"] = "NodeDownloadError" });
        var state = CacheReadiness.Compute(MatchOf(cache), new Dictionary<string, NodeEntryView>());
        Assert.False(state.AnyNodeHoldsModel);
        Assert.Equal(CacheState.Downloading, state.Reason);
        Assert.Contains("0 of 2 nodes", state.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_nodes_yet_is_its_own_reason()
    {
        var state = CacheReadiness.Compute(MatchOf(Cache("llama", "hf://o/m", ["gpu"])), new Dictionary<string, NodeEntryView>());
        Assert.Equal(CacheState.NoNodes, state.Reason);
        Assert.False(state.AnyNodeHoldsModel);
    }

    [Fact]
    public void Nodes_of_another_group_do_not_count()
    {
        var cache = Cache("llama", "hf://o/m", ["gpu", "cpu"], nodes: new() { ["cpu-1"] = "NodeDownloaded", ["gpu-1"] = "NodeDownloading" });
        var entries = new Dictionary<string, NodeEntryView>
        {
            ["cpu-1"] = new() { Node = "cpu-1", NodeGroup = "cpu" },
            ["gpu-1"] = new() { Node = "gpu-1", NodeGroup = "gpu" },
        };

        var state = CacheReadiness.Compute(MatchOf(cache, "gpu"), entries);

        Assert.False(state.AnyNodeHoldsModel);
        Assert.Equal(1, state.Total);
    }
}
