using k8s.Models;
using KServe.Node.CacheController.Model;

namespace KServe.Node.CacheController.Tests.Unit;

public sealed class NodePlannerTests
{
    private const long Gi = 1L << 30;
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static GroupModel Group(string name, string instanceType, long? limit) => new(name, limit, new V1PersistentVolumeSpec
    {
        NodeAffinity = new V1VolumeNodeAffinity
        {
            Required = new V1NodeSelector
            {
                NodeSelectorTerms = [new V1NodeSelectorTerm
                {
                    MatchExpressions = [new V1NodeSelectorRequirement { Key = "type", OperatorProperty = "In", Values = [instanceType] }],
                }],
            },
        },
    });

    private static CacheModel Cache(string name, long size, int minute, params string[] groups) =>
        new(CacheRef.Cluster(name), "key-" + name, size, groups, T0.AddMinutes(minute));

    private static readonly V1Node Node = new() { Metadata = new V1ObjectMeta { Name = "n", Labels = new Dictionary<string, string> { ["type"] = "gpu" } } };

    [Fact]
    public void A_cache_reaches_a_node_through_the_first_of_its_groups_the_node_belongs_to()
    {
        var groups = new[] { Group("cpu", "cpu", null), Group("g1", "gpu", null), Group("g2", "gpu", null) }.ToDictionary(g => g.Name);
        var plan = NodePlanner.Plan(Node, [Cache("m", Gi, 0, "cpu", "g2", "g1")], n => groups.GetValueOrDefault(n), new HashSet<CacheRef>());
        Assert.Equal("g2", Assert.Single(plan.Placed).Group);
    }

    [Fact]
    public void Models_that_would_exceed_the_storage_limit_are_not_placed()
    {
        var groups = new[] { Group("g", "gpu", 10 * Gi) }.ToDictionary(g => g.Name);
        var plan = NodePlanner.Plan(Node, [Cache("a", 6 * Gi, 0, "g"), Cache("b", 5 * Gi, 1, "g"), Cache("c", 4 * Gi, 2, "g")],
            n => groups.GetValueOrDefault(n), new HashSet<CacheRef>());
        Assert.Equal(["a", "c"], plan.Placed.Select(p => p.Cache.Ref.Name));
        var rejection = plan.Rejected[CacheRef.Cluster("b")];
        Assert.Equal((6 * Gi, 10 * Gi, 5 * Gi), (rejection.Used, rejection.Limit, rejection.ModelSize));
        Assert.Equal(10 * Gi, plan.UsedBytes);
    }

    [Fact]
    public void A_model_bigger_than_the_limit_alone_never_fits()
    {
        var groups = new[] { Group("g", "gpu", 2 * Gi) }.ToDictionary(g => g.Name);
        var plan = NodePlanner.Plan(Node, [Cache("big", 123 * Gi, 0, "g")], n => groups.GetValueOrDefault(n), new HashSet<CacheRef>());
        Assert.Empty(plan.Placed);
        Assert.Single(plan.Rejected);
    }

    [Fact]
    public void Models_already_on_the_node_keep_their_place_before_older_caches()
    {
        var groups = new[] { Group("g", "gpu", 10 * Gi) }.ToDictionary(g => g.Name);
        var plan = NodePlanner.Plan(Node, [Cache("old", 6 * Gi, 0, "g"), Cache("new", 6 * Gi, 5, "g")],
            n => groups.GetValueOrDefault(n), new HashSet<CacheRef> { CacheRef.Cluster("new") });
        Assert.Equal("new", Assert.Single(plan.Placed).Cache.Ref.Name);
        Assert.True(plan.Rejected.ContainsKey(CacheRef.Cluster("old")));
    }

    [Fact]
    public void Caches_sharing_a_source_uri_share_the_space()
    {
        var groups = new[] { Group("g", "gpu", 10 * Gi) }.ToDictionary(g => g.Name);
        var a = Cache("a", 8 * Gi, 0, "g");
        var b = new CacheModel(CacheRef.Namespaced("ns", "b"), a.StorageKey, 8 * Gi, ["g"], T0.AddMinutes(1));
        var plan = NodePlanner.Plan(Node, [a, b], n => groups.GetValueOrDefault(n), new HashSet<CacheRef>());
        Assert.Equal(2, plan.Placed.Count);
        Assert.Equal(8 * Gi, plan.UsedBytes);
    }

    [Fact]
    public void Missing_groups_and_non_member_nodes_get_nothing()
    {
        var groups = new[] { Group("g", "cpu", null) }.ToDictionary(g => g.Name);
        var plan = NodePlanner.Plan(Node, [Cache("a", Gi, 0, "g", "gone")], n => groups.GetValueOrDefault(n), new HashSet<CacheRef>());
        Assert.Empty(plan.Placed);
        Assert.Empty(plan.Rejected);
    }
}
