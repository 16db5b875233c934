using k8s;
using k8s.Models;

namespace KServe.Node.TestKit.Tests;

// Deletion per the Kubernetes docs "Finalizers" (delete marks deletionTimestamp while finalizers remain; the
// object goes when the last one is removed; no new finalizers once deleting) and "Garbage Collection"
// (cascading deletion: background by default, foreground waits for dependents, orphan keeps them).
public sealed class DeletionTests
{
    [Fact]
    public async Task Delete_with_finalizers_marks_and_removing_the_last_finalizer_deletes()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var cm = Fixture.ConfigMap("f");
        cm.Metadata.Finalizers = ["a.io/one", "a.io/two"];
        await client.CoreV1.CreateNamespacedConfigMapAsync(cm, "default");

        await client.CoreV1.DeleteNamespacedConfigMapAsync("f", "default");
        var marked = await client.CoreV1.ReadNamespacedConfigMapAsync("f", "default");
        Assert.NotNull(marked.Metadata.DeletionTimestamp);

        marked.Metadata.Finalizers = ["a.io/one", "a.io/two", "a.io/three"];
        var (code, status) = await Fixture.FailsAsync(() => client.CoreV1.ReplaceNamespacedConfigMapAsync(marked, "f", "default"));
        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, code);
        Assert.Contains("no new finalizers", status.Message, StringComparison.Ordinal);

        await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("[{\"op\":\"remove\",\"path\":\"/metadata/finalizers/0\"}]", V1Patch.PatchType.JsonPatch), "f", "default");
        Assert.NotNull(await client.CoreV1.ReadNamespacedConfigMapAsync("f", "default"));
        await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"metadata\":{\"finalizers\":null}}", V1Patch.PatchType.MergePatch), "f", "default");
        await Fixture.FailsAsync(() => client.CoreV1.ReadNamespacedConfigMapAsync("f", "default"));
    }

    private static V1OwnerReference OwnerOf(V1Deployment d) => new()
    {
        ApiVersion = "apps/v1",
        Kind = "Deployment",
        Name = d.Metadata.Name,
        Uid = d.Metadata.Uid,
        Controller = true,
        BlockOwnerDeletion = true,
    };

    [Fact]
    public async Task Background_cascade_deletes_dependents_whose_owners_are_all_gone()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var owner = await client.AppsV1.CreateNamespacedDeploymentAsync(Fixture.Deployment("o"), "default");
        var other = await client.AppsV1.CreateNamespacedDeploymentAsync(Fixture.Deployment("o2"), "default");
        var only = Fixture.ConfigMap("only");
        only.Metadata.OwnerReferences = [OwnerOf(owner)];
        var shared = Fixture.ConfigMap("shared");
        shared.Metadata.OwnerReferences = [OwnerOf(owner), OwnerOf(other)];
        await client.CoreV1.CreateNamespacedConfigMapAsync(only, "default");
        await client.CoreV1.CreateNamespacedConfigMapAsync(shared, "default");

        await client.AppsV1.DeleteNamespacedDeploymentAsync("o", "default");

        await Fixture.FailsAsync(() => client.CoreV1.ReadNamespacedConfigMapAsync("only", "default"));
        var kept = await client.CoreV1.ReadNamespacedConfigMapAsync("shared", "default");
        Assert.Equal([other.Metadata.Uid], kept.Metadata.OwnerReferences.Select(r => r.Uid));
    }

    [Fact]
    public async Task Orphan_keeps_dependents_without_the_owner_reference()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var owner = await client.AppsV1.CreateNamespacedDeploymentAsync(Fixture.Deployment("o"), "default");
        var dep = Fixture.ConfigMap("dep");
        dep.Metadata.OwnerReferences = [OwnerOf(owner)];
        await client.CoreV1.CreateNamespacedConfigMapAsync(dep, "default");

        await client.AppsV1.DeleteNamespacedDeploymentAsync("o", "default", propagationPolicy: "Orphan");

        await Fixture.FailsAsync(() => client.AppsV1.ReadNamespacedDeploymentAsync("o", "default"));
        var kept = await client.CoreV1.ReadNamespacedConfigMapAsync("dep", "default");
        Assert.Null(kept.Metadata.OwnerReferences);
    }

    [Fact]
    public async Task Foreground_keeps_the_owner_until_its_dependents_are_gone()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var owner = await client.AppsV1.CreateNamespacedDeploymentAsync(Fixture.Deployment("o"), "default");
        var dep = Fixture.ConfigMap("dep");
        dep.Metadata.OwnerReferences = [OwnerOf(owner)];
        dep.Metadata.Finalizers = ["test.io/hold"];
        await client.CoreV1.CreateNamespacedConfigMapAsync(dep, "default");

        await client.AppsV1.DeleteNamespacedDeploymentAsync("o", "default", propagationPolicy: "Foreground");

        var waiting = await client.AppsV1.ReadNamespacedDeploymentAsync("o", "default");
        Assert.NotNull(waiting.Metadata.DeletionTimestamp);
        Assert.Contains("foregroundDeletion", waiting.Metadata.Finalizers);
        Assert.NotNull((await client.CoreV1.ReadNamespacedConfigMapAsync("dep", "default")).Metadata.DeletionTimestamp);

        await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"metadata\":{\"finalizers\":null}}", V1Patch.PatchType.MergePatch), "dep", "default");

        await Fixture.FailsAsync(() => client.CoreV1.ReadNamespacedConfigMapAsync("dep", "default"));
        await Fixture.FailsAsync(() => client.AppsV1.ReadNamespacedDeploymentAsync("o", "default"));
    }

    [Fact]
    public async Task Delete_preconditions_on_resourceVersion_conflict()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var c = await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("pc"), "default");
        await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"data\":{\"k\":\"2\"}}", V1Patch.PatchType.MergePatch), "pc", "default");
        var (code, _) = await Fixture.FailsAsync(() => client.CoreV1.DeleteNamespacedConfigMapAsync("pc", "default",
            new V1DeleteOptions { Preconditions = new V1Preconditions { ResourceVersion = c.Metadata.ResourceVersion } }));
        Assert.Equal(System.Net.HttpStatusCode.Conflict, code);
    }
}
