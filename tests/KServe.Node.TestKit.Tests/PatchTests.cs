using k8s;
using k8s.Models;

namespace KServe.Node.TestKit.Tests;

// Patch formats per the Kubernetes docs "Update API Objects in Place Using kubectl patch" (JSON merge patch
// RFC 7386, JSON patch RFC 6902, strategic merge patch with merge keys such as containers/name, env/name).
public sealed class PatchTests
{
    [Fact]
    public async Task Merge_patch_sets_and_removes_keys()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("m", new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" }), "default");
        var p = await client.CoreV1.PatchNamespacedConfigMapAsync(
            new V1Patch("{\"metadata\":{\"labels\":{\"a\":null,\"c\":\"3\"}},\"data\":{\"k2\":\"v2\"}}", V1Patch.PatchType.MergePatch), "m", "default");
        Assert.Equal(new Dictionary<string, string> { ["b"] = "2", ["c"] = "3" }, p.Metadata.Labels);
        Assert.Equal("v", p.Data["k"]);
        Assert.Equal("v2", p.Data["k2"]);
    }

    [Fact]
    public async Task Json_patch_applies_operations_and_a_failed_test_is_refused()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("j"), "default");
        var p = await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch(
            "[{\"op\":\"test\",\"path\":\"/data/k\",\"value\":\"v\"},{\"op\":\"add\",\"path\":\"/metadata/labels\",\"value\":{\"a/b\":\"1\"}},{\"op\":\"replace\",\"path\":\"/data/k\",\"value\":\"w\"}]",
            V1Patch.PatchType.JsonPatch), "j", "default");
        Assert.Equal("w", p.Data["k"]);
        Assert.Equal("1", p.Metadata.Labels["a/b"]);
        p = await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("[{\"op\":\"remove\",\"path\":\"/metadata/labels/a~1b\"}]", V1Patch.PatchType.JsonPatch), "j", "default");
        Assert.Empty(p.Metadata.Labels ?? new Dictionary<string, string>());

        var (code, _) = await Fixture.FailsAsync(() => client.CoreV1.PatchNamespacedConfigMapAsync(
            new V1Patch("[{\"op\":\"test\",\"path\":\"/data/k\",\"value\":\"nope\"}]", V1Patch.PatchType.JsonPatch), "j", "default"));
        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, code);
    }

    [Fact]
    public async Task Strategic_merge_patch_merges_containers_and_env_by_name()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        await client.AppsV1.CreateNamespacedDeploymentAsync(Fixture.Deployment("sm"), "default");
        var patch = """
            {"spec":{"template":{"spec":{"containers":[
              {"name":"main","image":"img:2","env":[{"name":"B","value":"2"},{"name":"A","$patch":"delete"}]},
              {"name":"side","image":"side:1"}]}}}}
            """;
        var d = await client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(patch, V1Patch.PatchType.StrategicMergePatch), "sm", "default");
        var containers = d.Spec.Template.Spec.Containers;
        Assert.Equal(["main", "side"], containers.Select(c => c.Name));
        Assert.Equal("img:2", containers[0].Image);
        Assert.Equal(["B"], containers[0].Env.Select(e => e.Name));
        Assert.Equal(2, d.Metadata.Generation);
    }

    [Fact]
    public async Task A_patch_carrying_a_stale_resourceVersion_conflicts()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var c = await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("rv"), "default");
        await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"data\":{\"k\":\"1\"}}", V1Patch.PatchType.MergePatch), "rv", "default");
        var (code, status) = await Fixture.FailsAsync(() => client.CoreV1.PatchNamespacedConfigMapAsync(
            new V1Patch($"{{\"metadata\":{{\"resourceVersion\":\"{c.Metadata.ResourceVersion}\"}},\"data\":{{\"k\":\"2\"}}}}", V1Patch.PatchType.MergePatch), "rv", "default"));
        Assert.Equal(System.Net.HttpStatusCode.Conflict, code);
        Assert.Equal("Conflict", status.Reason);
    }
}
