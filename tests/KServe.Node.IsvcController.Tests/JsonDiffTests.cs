using System.Text.Json.Nodes;
using k8s.Models;
using KServe.Node.IsvcController.Resources;

namespace KServe.Node.IsvcController.Tests;

public sealed class JsonDiffTests
{
    [Fact]
    public void Server_defaults_and_extra_fields_are_not_a_difference()
    {
        var desired = JsonNode.Parse("""{"spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}""");
        var actual = JsonNode.Parse("""{"spec":{"replicas":1,"progressDeadlineSeconds":600,"template":{"spec":{"dnsPolicy":"ClusterFirst","containers":[{"name":"c","image":"i","imagePullPolicy":"IfNotPresent"}]}}},"status":{"replicas":1}}""");
        Assert.True(JsonDiff.Contains(actual, desired));
    }

    [Theory]
    [InlineData("""{"a":{"b":"x"}}""", """{"a":{"b":"y"}}""")]
    [InlineData("""{"l":[1,2]}""", """{"l":[1]}""")]
    [InlineData("""{"l":[1]}""", """{"l":[1,2]}""")]
    [InlineData("""{"a":null}""", """{"a":1}""")]
    public void A_changed_owned_field_is_a_difference(string actual, string desired) =>
        Assert.False(JsonDiff.Contains(JsonNode.Parse(actual), JsonNode.Parse(desired)));

    [Fact]
    public void Numbers_compare_by_value_and_int_or_string_either_way()
    {
        Assert.True(JsonDiff.Contains(JsonNode.Parse("""{"p":8080.0}"""), JsonNode.Parse("""{"p":8080}""")));
        Assert.True(JsonDiff.Contains(JsonNode.Parse("""{"p":"8080"}"""), JsonNode.Parse("""{"p":8080}""")));
        Assert.True(JsonDiff.Contains(JsonNode.Parse("""{}"""), JsonNode.Parse("""{"m":{},"l":[]}""")));
    }

    [Fact]
    public void A_built_deployment_contains_itself_after_a_round_trip()
    {
        var isvc = Samples.Read(Samples.Isvc());
        var plan = PredictorBuilder.Build(isvc, new IsvcControllerOptions(), null, podsAllowed: true);
        var wire = JsonDiff.ToNode(JsonDiff.Clone<V1Deployment>(plan.Deployment));
        Assert.True(JsonDiff.Contains(wire, JsonDiff.ToNode(plan.Deployment)));
    }
}
