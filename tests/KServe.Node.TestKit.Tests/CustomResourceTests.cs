using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace KServe.Node.TestKit.Tests;

// Custom resource handling per the Kubernetes docs "Extend the Kubernetes API with CustomResourceDefinitions":
// "Validation", "Field pruning", "Defaulting", "Validation rules" (transition rule self == oldSelf),
// "Status subresource"; 422 Invalid messages in the apiserver's "Kind.group \"name\" is invalid: field: ..." form.
public sealed class CustomResourceTests
{
    private const string Group = "test.kserve-node.io";

    private static JsonObject Widget(string name, JsonObject spec) => new()
    {
        ["apiVersion"] = $"{Group}/v1",
        ["kind"] = "Widget",
        ["metadata"] = new JsonObject { ["name"] = name },
        ["spec"] = spec,
    };

    private static JsonObject ValidSpec() => new()
    {
        ["sourceModelUri"] = "hf://org/model",
        ["modelSize"] = "1Gi",
        ["nodeGroups"] = new JsonArray("gpu"),
    };

    private static JsonObject ToJson(object o) => JsonNode.Parse(JsonSerializer.Serialize(o))!.AsObject();

    private static async Task<(TestKit.ApiServer.TestApiServer, Kubernetes)> StartWithCrdAsync()
    {
        var server = await Fixture.StartAsync();
        await server.ApplyCrdsFromDirectoryAsync(Fixture.CrdDir);
        return (server, server.CreateClient());
    }

    [Fact]
    public async Task Applied_CRDs_are_established_and_served()
    {
        var (server, client) = await StartWithCrdAsync();
        await using var srv = server;
        using var cl = client;
        var crd = await client.ApiextensionsV1.ReadCustomResourceDefinitionAsync($"widgets.{Group}");
        Assert.Contains(crd.Status.Conditions, c => c.Type == "Established" && c.Status == "True");

        var created = ToJson(await client.CustomObjects.CreateClusterCustomObjectAsync(Widget("w1", ValidSpec()), Group, "v1", "widgets"));
        Assert.Equal(1, created["metadata"]!["generation"]!.GetValue<long>());
        Assert.Equal(1, created["spec"]!["replicas"]!.GetValue<long>());
        var list = ToJson(await client.CustomObjects.ListClusterCustomObjectAsync(Group, "v1", "widgets"));
        Assert.Equal("WidgetList", list["kind"]!.GetValue<string>());
        Assert.Single(list["items"]!.AsArray());
    }

    [Fact]
    public async Task Schema_violations_answer_422_naming_the_fields()
    {
        var (server, client) = await StartWithCrdAsync();
        await using var srv = server;
        using var cl = client;
        var spec = ValidSpec();
        spec["nodeGroups"] = new JsonArray();
        spec["replicas"] = -1;
        spec["mode"] = "Medium";
        spec.Remove("sourceModelUri");
        var (code, status) = await Fixture.FailsAsync(() => client.CustomObjects.CreateClusterCustomObjectAsync(Widget("bad", spec), Group, "v1", "widgets"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, code);
        Assert.Equal("Invalid", status.Reason);
        Assert.StartsWith("Widget.test.kserve-node.io \"bad\" is invalid: [", status.Message, StringComparison.Ordinal);
        Assert.Contains("spec.nodeGroups: Invalid value: 0: spec.nodeGroups in body should have at least 1 items", status.Message, StringComparison.Ordinal);
        Assert.Contains("spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0", status.Message, StringComparison.Ordinal);
        Assert.Contains("spec.mode: Unsupported value: \"Medium\": supported values: \"Fast\", \"Slow\"", status.Message, StringComparison.Ordinal);
        Assert.Contains("spec.sourceModelUri: Required value", status.Message, StringComparison.Ordinal);
        Assert.Equal(["spec.mode", "spec.nodeGroups", "spec.replicas", "spec.sourceModelUri"], status.Details.Causes.Select(c => c.Field).Order(StringComparer.Ordinal));

        var single = ValidSpec();
        single["nodeGroups"] = "gpu";
        (_, status) = await Fixture.FailsAsync(() => client.CustomObjects.CreateClusterCustomObjectAsync(Widget("bad2", single), Group, "v1", "widgets"));
        Assert.Equal("Widget.test.kserve-node.io \"bad2\" is invalid: spec.nodeGroups: Invalid value: \"string\": spec.nodeGroups in body must be of type array: \"string\"", status.Message);

        var badSize = ValidSpec();
        badSize["modelSize"] = "lots";
        (_, status) = await Fixture.FailsAsync(() => client.CustomObjects.CreateClusterCustomObjectAsync(Widget("bad3", badSize), Group, "v1", "widgets"));
        Assert.Equal("spec.modelSize", status.Details.Causes.Single().Field);
        var intSize = ValidSpec();
        intSize["modelSize"] = 1024;
        await client.CustomObjects.CreateClusterCustomObjectAsync(Widget("ok", intSize), Group, "v1", "widgets");
    }

    [Fact]
    public async Task Unknown_fields_are_pruned_except_where_preserved()
    {
        var (server, client) = await StartWithCrdAsync();
        await using var srv = server;
        using var cl = client;
        var spec = ValidSpec();
        spec["unknown"] = "dropped";
        spec["extra"] = new JsonObject { ["anything"] = new JsonObject { ["goes"] = 1 } };
        spec["labels"] = new JsonObject { ["a"] = "b" };
        var w = Widget("p", spec);
        w["topLevelJunk"] = 1;
        var created = ToJson(await client.CustomObjects.CreateClusterCustomObjectAsync(w, Group, "v1", "widgets"));
        Assert.Null(created["spec"]!["unknown"]);
        Assert.Null(created["topLevelJunk"]);
        Assert.Equal(1, created["spec"]!["extra"]!["anything"]!["goes"]!.GetValue<int>());
        Assert.Equal("b", created["spec"]!["labels"]!["a"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_self_equals_oldSelf_rule_makes_a_field_immutable()
    {
        var (server, client) = await StartWithCrdAsync();
        await using var srv = server;
        using var cl = client;
        await client.CustomObjects.CreateClusterCustomObjectAsync(Widget("imm", ValidSpec()), Group, "v1", "widgets");
        var (code, status) = await Fixture.FailsAsync(() => client.CustomObjects.PatchClusterCustomObjectAsync(
            new V1Patch("{\"spec\":{\"sourceModelUri\":\"s3://other\"}}", V1Patch.PatchType.MergePatch), Group, "v1", "widgets", "imm"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, code);
        Assert.Equal("Widget.test.kserve-node.io \"imm\" is invalid: spec.sourceModelUri: Invalid value: \"string\": StorageUri is immutable", status.Message);

        var ok = ToJson(await client.CustomObjects.PatchClusterCustomObjectAsync(
            new V1Patch("{\"spec\":{\"nodeGroups\":[\"a\",\"b\"]}}", V1Patch.PatchType.MergePatch), Group, "v1", "widgets", "imm"));
        Assert.Equal(2, ok["metadata"]!["generation"]!.GetValue<long>());
    }

    [Fact]
    public async Task Custom_status_subresource_separates_spec_and_status()
    {
        var (server, client) = await StartWithCrdAsync();
        await using var srv = server;
        using var cl = client;
        var w = Widget("st", ValidSpec());
        w["status"] = new JsonObject { ["copies"] = new JsonObject { ["available"] = 5 } };
        var created = ToJson(await client.CustomObjects.CreateClusterCustomObjectAsync(w, Group, "v1", "widgets"));
        Assert.Null(created["status"]);

        var st = ToJson(await client.CustomObjects.PatchClusterCustomObjectStatusAsync(
            new V1Patch("{\"status\":{\"copies\":{\"available\":2}},\"spec\":{\"nodeGroups\":[\"x\"]}}", V1Patch.PatchType.MergePatch), Group, "v1", "widgets", "st"));
        Assert.Equal(2, st["status"]!["copies"]!["available"]!.GetValue<int>());
        Assert.Equal("gpu", st["spec"]!["nodeGroups"]![0]!.GetValue<string>());
        Assert.Equal(1, st["metadata"]!["generation"]!.GetValue<long>());

        st["status"]!["copies"]!["available"] = 9;
        st["spec"]!["nodeGroups"] = new JsonArray("y");
        var replaced = ToJson(await client.CustomObjects.ReplaceClusterCustomObjectAsync(st, Group, "v1", "widgets", "st"));
        Assert.Equal(2, replaced["status"]!["copies"]!["available"]!.GetValue<int>());
        Assert.Equal("y", replaced["spec"]!["nodeGroups"]![0]!.GetValue<string>());
        Assert.Equal(2, replaced["metadata"]!["generation"]!.GetValue<long>());

        var (code, _) = await Fixture.FailsAsync(() => client.CustomObjects.PatchClusterCustomObjectStatusAsync(
            new V1Patch("{\"status\":{\"copies\":{\"available\":\"many\"}}}", V1Patch.PatchType.MergePatch), Group, "v1", "widgets", "st"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, code);
    }

    [Fact]
    public async Task Strategic_merge_patch_is_refused_for_custom_resources()
    {
        var (server, client) = await StartWithCrdAsync();
        await using var srv = server;
        using var cl = client;
        await client.CustomObjects.CreateClusterCustomObjectAsync(Widget("smp", ValidSpec()), Group, "v1", "widgets");
        var (code, status) = await Fixture.FailsAsync(() => client.CustomObjects.PatchClusterCustomObjectAsync(
            new V1Patch("{\"spec\":{}}", V1Patch.PatchType.StrategicMergePatch), Group, "v1", "widgets", "smp"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, code);
        Assert.Equal("UnsupportedMediaType", status.Reason);
    }

    [Fact]
    public async Task Deleting_the_CRD_stops_serving_its_resources()
    {
        var (server, client) = await StartWithCrdAsync();
        await using var srv = server;
        using var cl = client;
        await client.CustomObjects.CreateClusterCustomObjectAsync(Widget("gone", ValidSpec()), Group, "v1", "widgets");
        await client.ApiextensionsV1.DeleteCustomResourceDefinitionAsync($"widgets.{Group}");
        var (code, _) = await Fixture.FailsAsync(() => client.CustomObjects.ListClusterCustomObjectAsync(Group, "v1", "widgets"));
        Assert.Equal(HttpStatusCode.NotFound, code);
    }
}
