using k8s.Models;
using KServe.Node.Api.Serialization;
using KServe.Node.Api.V1Alpha1;

namespace KServe.Node.Api.Tests;

public sealed class ConditionsTests
{
    private static readonly DateTime T0 = new(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);

    [Fact]
    public void Set_adds_a_condition_with_the_transition_time()
    {
        var list = new List<V1Condition>();

        Assert.True(Conditions.Set(list, LocalModelCacheConditions.Ready, ConditionStatus.False, "CopiesPending", null, 2, T0.AddMilliseconds(700)));

        var c = Assert.Single(list);
        Assert.Equal(("Ready", "False", "CopiesPending", "", 2L, T0), (c.Type, c.Status, c.Reason, c.Message, c.ObservedGeneration, c.LastTransitionTime));
    }

    [Fact]
    public void Transition_time_changes_only_when_the_status_flips()
    {
        var list = new List<V1Condition>();
        Conditions.Set(list, "Ready", "False", "CopiesPending", "0 of 2", 1, T0);

        Assert.False(Conditions.Set(list, "Ready", "False", "CopiesPending", "0 of 2", 1, T0.AddMinutes(1)));
        Assert.True(Conditions.Set(list, "Ready", "False", "CopiesPending", "1 of 2", 1, T0.AddMinutes(2)));
        Assert.Equal(T0, list[0].LastTransitionTime);

        Assert.True(Conditions.Set(list, "Ready", "True", "AllCopiesAvailable", "2 of 2", 1, T0.AddMinutes(3)));
        Assert.Equal(T0.AddMinutes(3), list[0].LastTransitionTime);
        Assert.True(Conditions.IsTrue(list, "Ready"));
        Assert.False(Conditions.IsTrue(list, "Degraded"));
        Assert.True(Conditions.Remove(list, "Ready"));
        Assert.Empty(list);
    }

    [Fact]
    public void Bad_status_or_reason_is_refused()
    {
        var list = new List<V1Condition>();
        Assert.Throws<ArgumentException>(() => Conditions.Set(list, "Ready", "Yes", "R", null, null, T0));
        Assert.Throws<ArgumentException>(() => Conditions.Set(list, "Ready", "True", "has space", null, null, T0));
        Assert.Throws<ArgumentException>(() => Conditions.Set(list, "Ready", "True", "", null, null, T0));
    }

    [Fact]
    public void Conditions_set_by_the_helper_pass_the_crd_schema()
    {
        var cache = ApiSerializer.Deserialize<LocalModelCache>(TestFiles.Example("localmodelcache.yaml"));
        cache.Status!.Conditions = [];
        Conditions.Set(cache.Status.Conditions, "Ready", "True", "AllCopiesAvailable", null, 3, T0);

        var schema = (System.Text.Json.Nodes.JsonObject)YamlJson.Parse(File.ReadAllText(Path.Combine(TestFiles.CrdDirectory, "serving.kserve.io_localmodelcaches.yaml")))!["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!;
        var result = Crds.SchemaValidator.Validate(ApiSerializer.ToNode(cache), schema);

        Assert.Empty(result.Errors);
        Assert.Empty(result.Pruned);
    }
}

public sealed class NodeSelectorMatcherTests
{
    private static V1Node Node(string name, params (string Key, string Value)[] labels) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels.ToDictionary(l => l.Key, l => l.Value) },
    };

    private static V1NodeSelector Selector(params V1NodeSelectorTerm[] terms) => new() { NodeSelectorTerms = terms };

    private static V1NodeSelectorTerm Term(params V1NodeSelectorRequirement[] expressions) => new() { MatchExpressions = expressions };

    private static V1NodeSelectorRequirement Req(string key, string op, params string[] values) =>
        new() { Key = key, OperatorProperty = op, Values = values.Length == 0 ? null : values };

    [Theory]
    [InlineData("In", new[] { "gpu1", "gpu2" }, "gpu2", true)]
    [InlineData("In", new[] { "gpu1" }, "gpu2", false)]
    [InlineData("In", new[] { "gpu1" }, null, false)]
    [InlineData("NotIn", new[] { "gpu1" }, "gpu2", true)]
    [InlineData("NotIn", new[] { "gpu1" }, null, true)]
    [InlineData("NotIn", new[] { "gpu1" }, "gpu1", false)]
    [InlineData("Exists", new string[0], "x", true)]
    [InlineData("Exists", new string[0], null, false)]
    [InlineData("DoesNotExist", new string[0], null, true)]
    [InlineData("DoesNotExist", new string[0], "x", false)]
    [InlineData("Gt", new[] { "4" }, "8", true)]
    [InlineData("Gt", new[] { "8" }, "8", false)]
    [InlineData("Lt", new[] { "8" }, "4", true)]
    [InlineData("Lt", new[] { "9" }, "8", true)]
    [InlineData("Lt", new[] { "8" }, "8", false)]
    [InlineData("Gt", new[] { "4" }, "eight", false)]
    [InlineData("Gt", new[] { "1" }, "gpu1", false)]
    [InlineData("Gt", new[] { "four" }, "8", false)]
    [InlineData("Gt", new[] { "4" }, " 8", false)]
    [InlineData("Gt", new string[0], "8", false)]
    [InlineData("Gt", new[] { "4", "5" }, "8", false)]
    [InlineData("In", new string[0], "x", false)]
    [InlineData("NotIn", new string[0], "x", false)]
    [InlineData("NotIn", new string[0], null, false)]
    [InlineData("Exists", new[] { "x" }, "x", false)]
    [InlineData("DoesNotExist", new[] { "x" }, null, false)]
    [InlineData("Matches", new[] { "x" }, "x", false)]
    public void Operators_follow_kubernetes_semantics(string op, string[] values, string? label, bool expected)
    {
        var node = label is null ? Node("n1") : Node("n1", ("node.kubernetes.io/instance-type", label));

        Assert.Equal(expected, NodeSelectorMatcher.Matches(Selector(Term(Req("node.kubernetes.io/instance-type", op, values))), node));
    }

    [Fact]
    public void Terms_are_ored_and_requirements_anded()
    {
        var selector = Selector(
            Term(Req("gpu", "In", "a100"), Req("zone", "In", "z1")),
            Term(Req("gpu", "In", "h100")));

        Assert.True(NodeSelectorMatcher.Matches(selector, Node("n", ("gpu", "a100"), ("zone", "z1"))));
        Assert.False(NodeSelectorMatcher.Matches(selector, Node("n", ("gpu", "a100"), ("zone", "z2"))));
        Assert.True(NodeSelectorMatcher.Matches(selector, Node("n", ("gpu", "h100"))));

        var gpu1 = Node("n1", ("node.kubernetes.io/instance-type", "gpu1"), ("cores", "8"));
        Assert.False(NodeSelectorMatcher.Matches(Selector(Term(Req("cores", "Exists"), Req("node.kubernetes.io/instance-type", "In", "gpu2"))), gpu1));
        Assert.True(NodeSelectorMatcher.Matches(Selector(Term(Req("node.kubernetes.io/instance-type", "In", "gpu2")), Term(Req("cores", "In", "8"))), gpu1));
    }

    [Fact]
    public void A_malformed_term_matches_nothing_but_the_other_terms_still_count()
    {
        var node = Node("n", ("gpu", "a100"));
        var malformed = Term(Req("gpu", "In", "a100"), Req("zone", "Exists", "z1"));

        Assert.False(NodeSelectorMatcher.Matches(Selector(malformed), node));
        Assert.True(NodeSelectorMatcher.Matches(Selector(malformed, Term(Req("gpu", "Exists"))), node));
        Assert.False(NodeSelectorMatcher.Matches(Selector(Term(Req("", "DoesNotExist"))), node));
        Assert.False(NodeSelectorMatcher.Matches(Selector(Term(new V1NodeSelectorRequirement { OperatorProperty = "DoesNotExist" })), node));
        Assert.False(NodeSelectorMatcher.Matches(Selector(new V1NodeSelectorTerm { MatchExpressions = [null!] }), node));
    }

    [Fact]
    public void Empty_or_missing_selectors_and_terms_match_nothing()
    {
        var node = Node("n", ("gpu", "a100"));
        Assert.False(NodeSelectorMatcher.Matches((V1NodeSelector?)null, node));
        Assert.False(NodeSelectorMatcher.Matches(Selector(), node));
        Assert.False(NodeSelectorMatcher.Matches(Selector(new V1NodeSelectorTerm()), node));
        Assert.False(NodeSelectorMatcher.Matches(Selector(new V1NodeSelectorTerm { MatchExpressions = [], MatchFields = [] }), node));
    }

    [Fact]
    public void A_pv_spec_without_required_node_affinity_matches_no_node()
    {
        // Spec §1.4: "A PV spec with no nodeAffinity or no required term matches no node."
        var node = Node("n", ("gpu", "a100"));
        Assert.False(NodeSelectorMatcher.Matches((V1PersistentVolumeSpec?)null, node));
        Assert.False(NodeSelectorMatcher.Matches(new V1PersistentVolumeSpec(), node));
        Assert.False(NodeSelectorMatcher.Matches(new V1PersistentVolumeSpec { NodeAffinity = new V1VolumeNodeAffinity() }, node));

        var pv = new V1PersistentVolumeSpec { NodeAffinity = new V1VolumeNodeAffinity { Required = Selector(Term(Req("gpu", "In", "a100"))) } };
        Assert.True(NodeSelectorMatcher.Matches(pv, node));
        Assert.False(NodeSelectorMatcher.Matches(pv, Node("n", ("gpu", "t4"))));
    }

    [Fact]
    public void Match_fields_select_by_node_name()
    {
        var byName = Selector(new V1NodeSelectorTerm { MatchFields = [Req("metadata.name", "In", "gpu-node-7")] });
        Assert.True(NodeSelectorMatcher.Matches(byName, Node("gpu-node-7")));
        Assert.False(NodeSelectorMatcher.Matches(byName, Node("gpu-node-8")));
        var notByName = Selector(new V1NodeSelectorTerm { MatchFields = [Req("metadata.name", "NotIn", "gpu-node-7")] });
        Assert.False(NodeSelectorMatcher.Matches(notByName, Node("gpu-node-7")));
        Assert.True(NodeSelectorMatcher.Matches(notByName, Node("gpu-node-8")));
        var unsupported = Selector(new V1NodeSelectorTerm { MatchFields = [Req("metadata.uid", "In", "x")] });
        Assert.False(NodeSelectorMatcher.Matches(unsupported, Node("x")));
        var exists = Selector(new V1NodeSelectorTerm { MatchFields = [Req("metadata.name", "Exists")] });
        Assert.False(NodeSelectorMatcher.Matches(exists, Node("x")));
    }

    [Fact]
    public void Match_fields_take_exactly_one_value()
    {
        // Kubernetes' nodeSelectorRequirementsAsFieldSelector: In and NotIn on a field need exactly one
        // value; any other count makes the term invalid, so it matches no node.
        var twoNames = Selector(new V1NodeSelectorTerm { MatchFields = [Req("metadata.name", "In", "n1", "n2")] });
        Assert.False(NodeSelectorMatcher.Matches(twoNames, Node("n1")));
        Assert.False(NodeSelectorMatcher.Matches(twoNames, Node("n3")));
        var noName = Selector(new V1NodeSelectorTerm { MatchFields = [Req("metadata.name", "NotIn")] });
        Assert.False(NodeSelectorMatcher.Matches(noName, Node("n1")));
    }

    [Fact]
    public void Match_expressions_and_match_fields_of_one_term_are_anded()
    {
        var term = new V1NodeSelectorTerm { MatchExpressions = [Req("gpu", "In", "a100")], MatchFields = [Req("metadata.name", "In", "gpu-node-7")] };
        Assert.True(NodeSelectorMatcher.Matches(Selector(term), Node("gpu-node-7", ("gpu", "a100"))));
        Assert.False(NodeSelectorMatcher.Matches(Selector(term), Node("gpu-node-8", ("gpu", "a100"))));
        Assert.False(NodeSelectorMatcher.Matches(Selector(term), Node("gpu-node-7", ("gpu", "t4"))));
    }

    [Fact]
    public void Node_group_selects_nodes_through_its_pv_template()
    {
        // Spec §1.4: "Its nodeAffinity.required selects the member nodes. A PV spec with no nodeAffinity or
        // no required term matches no node."
        var group = ApiSerializer.Deserialize<LocalModelNodeGroup>(TestFiles.Example("localmodelnodegroup.yaml"));

        Assert.True(group.Selects(Node("a", ("nvidia.com/gpu.product", "A100"))));
        Assert.True(group.Selects(Node("gpu-node-7")));
        Assert.False(group.Selects(Node("b", ("nvidia.com/gpu.product", "T4"))));

        group.Spec.PersistentVolumeSpec!.NodeAffinity = null;
        Assert.False(group.Selects(Node("a", ("nvidia.com/gpu.product", "A100"))));
    }

    [Fact]
    public void Readiness_needs_a_true_ready_condition()
    {
        var node = Node("n");
        Assert.False(NodeReadiness.IsReady(node));
        node.Status = new V1NodeStatus();
        Assert.False(NodeReadiness.IsReady(node));
        node.Status.Conditions = [new V1NodeCondition { Type = "MemoryPressure", Status = "True" }];
        Assert.False(NodeReadiness.IsReady(node));
        node.Status.Conditions = [new V1NodeCondition { Type = "Ready", Status = "False" }];
        Assert.False(NodeReadiness.IsReady(node));
        node.Status.Conditions[0].Status = "Unknown";
        Assert.False(NodeReadiness.IsReady(node));
        node.Status.Conditions[0].Status = "True";
        Assert.True(NodeReadiness.IsReady(node));
    }

    [Fact]
    public void Readiness_reads_the_first_ready_condition()
    {
        // As Kubernetes' GetNodeCondition: the first condition of the type decides.
        var node = Node("n");
        node.Status = new V1NodeStatus
        {
            Conditions =
            [
                new V1NodeCondition { Type = "Ready", Status = "False" },
                new V1NodeCondition { Type = "Ready", Status = "True" },
            ],
        };
        Assert.False(NodeReadiness.IsReady(node));
    }
}

public sealed class LocalModelInfoTests
{
    [Fact]
    public void Entry_for_a_cache_copies_the_download_fields()
    {
        var spec = new LocalModelCacheSpec
        {
            SourceModelUri = "hf://meta-llama/Meta-Llama-3-8B",
            ModelSize = new("16Gi"),
            NodeGroups = ["gpu-a100"],
            ServiceAccountName = "hf-reader",
            Storage = new() { Key = "k", Parameters = new Dictionary<string, string> { ["allowPatterns"] = "*.gguf" } },
        };

        var cluster = LocalModelInfo.ForCache("llama3", null, spec, "gpu-a100");
        var namespaced = LocalModelInfo.ForCache("llama3", "team-a", spec, "gpu-a100");

        Assert.Equal(
            """{"sourceModelUri":"hf://meta-llama/Meta-Llama-3-8B","modelName":"llama3","nodeGroup":"gpu-a100","serviceAccountName":"hf-reader","storage":{"key":"k","parameters":{"allowPatterns":"*.gguf"}}}""",
            ApiSerializer.SerializeJson(cluster));
        Assert.Equal("team-a/llama3", namespaced.StatusKey);
        Assert.Equal("c41ae4f29d692d55", cluster.StorageKey);
        Assert.False(cluster.SameIdentity(namespaced));
        Assert.NotSame(spec.Storage, cluster.Storage);
    }

    [Fact]
    public void Differs_from_looks_at_uri_service_account_group_and_storage_only()
    {
        var spec = new LocalModelCacheSpec { SourceModelUri = "s3://b/m", NodeGroups = ["g1"], Storage = new() { Key = "k" } };
        var current = LocalModelInfo.ForCache("m", null, spec, "g1");

        Assert.False(current.DiffersFrom(LocalModelInfo.ForCache("m", null, spec, "g1")));
        Assert.True(current.DiffersFrom(LocalModelInfo.ForCache("m", null, spec, "g2")));
        Assert.True(current.DiffersFrom(LocalModelInfo.ForCache("m", null, new LocalModelCacheSpec { SourceModelUri = "s3://b/m", Storage = new() { Key = "other" } }, "g1")));
        Assert.True(current.DiffersFrom(LocalModelInfo.ForCache("m", null, new LocalModelCacheSpec { SourceModelUri = "s3://b/m2", Storage = new() { Key = "k" } }, "g1")));
    }
}
