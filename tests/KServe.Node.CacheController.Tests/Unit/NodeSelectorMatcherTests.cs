using k8s.Models;
using KServe.Node.CacheController.Model;

namespace KServe.Node.CacheController.Tests.Unit;

public sealed class NodeSelectorMatcherTests
{
    internal static V1Node Node(string name, Dictionary<string, string>? labels = null, bool? ready = true) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels },
        Status = ready is null ? new V1NodeStatus() : new V1NodeStatus
        {
            Conditions = [new V1NodeCondition { Type = "Ready", Status = ready.Value ? "True" : "False" }],
        },
    };

    private static V1NodeSelector Selector(params V1NodeSelectorTerm[] terms) => new() { NodeSelectorTerms = terms };

    private static V1NodeSelectorTerm Term(params V1NodeSelectorRequirement[] expressions) => new() { MatchExpressions = expressions };

    private static V1NodeSelectorRequirement Req(string key, string op, params string[] values) =>
        new() { Key = key, OperatorProperty = op, Values = values.Length == 0 ? null : values };

    private static readonly V1Node Gpu1 = Node("n1", new() { ["node.kubernetes.io/instance-type"] = "gpu1", ["cores"] = "8" });

    [Fact]
    public void In_matches_a_listed_label_value_only()
    {
        Assert.True(NodeSelectorMatcher.Matches(Selector(Term(Req("node.kubernetes.io/instance-type", "In", "gpu1", "gpu3"))), Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(Selector(Term(Req("node.kubernetes.io/instance-type", "In", "gpu2"))), Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(Selector(Term(Req("missing", "In", "gpu1"))), Gpu1));
    }

    [Fact]
    public void NotIn_and_DoesNotExist_match_an_absent_label()
    {
        Assert.True(NodeSelectorMatcher.Matches(Selector(Term(Req("missing", "NotIn", "x"))), Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(Selector(Term(Req("node.kubernetes.io/instance-type", "NotIn", "gpu1"))), Gpu1));
        Assert.True(NodeSelectorMatcher.Matches(Selector(Term(Req("missing", "DoesNotExist"))), Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(Selector(Term(Req("cores", "DoesNotExist"))), Gpu1));
        Assert.True(NodeSelectorMatcher.Matches(Selector(Term(Req("cores", "Exists"))), Gpu1));
    }

    [Fact]
    public void Gt_and_Lt_compare_integers_and_reject_non_numbers()
    {
        Assert.True(NodeSelectorMatcher.Matches(Selector(Term(Req("cores", "Gt", "4"))), Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(Selector(Term(Req("cores", "Gt", "8"))), Gpu1));
        Assert.True(NodeSelectorMatcher.Matches(Selector(Term(Req("cores", "Lt", "9"))), Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(Selector(Term(Req("node.kubernetes.io/instance-type", "Gt", "1"))), Gpu1));
    }

    [Fact]
    public void Terms_are_ORed_and_expressions_inside_a_term_are_ANDed()
    {
        var and = Selector(Term(Req("cores", "Exists"), Req("node.kubernetes.io/instance-type", "In", "gpu2")));
        Assert.False(NodeSelectorMatcher.Matches(and, Gpu1));
        var or = Selector(Term(Req("node.kubernetes.io/instance-type", "In", "gpu2")), Term(Req("cores", "In", "8")));
        Assert.True(NodeSelectorMatcher.Matches(or, Gpu1));
    }

    [Fact]
    public void No_affinity_or_empty_terms_match_no_node()
    {
        Assert.False(NodeSelectorMatcher.Matches((V1PersistentVolumeSpec?)null, Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(new V1PersistentVolumeSpec(), Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(Selector(), Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(Selector(new V1NodeSelectorTerm()), Gpu1));
    }

    [Fact]
    public void MatchFields_selects_by_node_name()
    {
        var byName = Selector(new V1NodeSelectorTerm
        {
            MatchFields = [new V1NodeSelectorRequirement { Key = "metadata.name", OperatorProperty = "In", Values = ["n1", "n2"] }],
        });
        Assert.True(NodeSelectorMatcher.Matches(byName, Gpu1));
        Assert.False(NodeSelectorMatcher.Matches(byName, Node("n3")));
        var unsupported = Selector(new V1NodeSelectorTerm
        {
            MatchFields = [new V1NodeSelectorRequirement { Key = "metadata.uid", OperatorProperty = "In", Values = ["n1"] }],
        });
        Assert.False(NodeSelectorMatcher.Matches(unsupported, Gpu1));
    }

    [Fact]
    public void A_node_without_conditions_is_not_ready()
    {
        Assert.True(NodeSelectorMatcher.IsReady(Node("a", ready: true)));
        Assert.False(NodeSelectorMatcher.IsReady(Node("a", ready: false)));
        Assert.False(NodeSelectorMatcher.IsReady(Node("a", ready: null)));
    }
}
