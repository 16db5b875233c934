using k8s;
using k8s.Models;

namespace KServe.Node.TestKit.Tests;

// Checked against the Kubernetes docs "Custom Resources" → "Status subresource" (PUT on the main resource
// ignores status; /status changes only status; generation moves on spec changes only) and the API
// conventions ("metadata.generation ... incremented by the system when spec changes").
public sealed class StatusAndGenerationTests
{
    [Fact]
    public async Task Generation_moves_on_spec_changes_only()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var d = await client.AppsV1.CreateNamespacedDeploymentAsync(Fixture.Deployment("g"), "default");
        Assert.Equal(1, d.Metadata.Generation);

        d.Metadata.Labels = new Dictionary<string, string> { ["x"] = "y" };
        d = await client.AppsV1.ReplaceNamespacedDeploymentAsync(d, "g", "default");
        Assert.Equal(1, d.Metadata.Generation);

        d.Spec.Replicas = 3;
        d = await client.AppsV1.ReplaceNamespacedDeploymentAsync(d, "g", "default");
        Assert.Equal(2, d.Metadata.Generation);

        d.Status = new V1DeploymentStatus { ObservedGeneration = 2, Replicas = 3 };
        d = await client.AppsV1.ReplaceNamespacedDeploymentStatusAsync(d, "g", "default");
        Assert.Equal(2, d.Metadata.Generation);
        Assert.Equal(3, d.Status.Replicas);
    }

    [Fact]
    public async Task Main_resource_ignores_status_and_status_subresource_ignores_spec()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var d = await client.AppsV1.CreateNamespacedDeploymentAsync(Fixture.Deployment("s"), "default");

        d.Status = new V1DeploymentStatus { Replicas = 7 };
        d.Spec.Replicas = 2;
        var afterMain = await client.AppsV1.ReplaceNamespacedDeploymentAsync(d, "s", "default");
        Assert.Equal(2, afterMain.Spec.Replicas);
        Assert.Null(afterMain.Status?.Replicas);

        afterMain.Spec.Replicas = 9;
        afterMain.Status = new V1DeploymentStatus { Replicas = 5 };
        var afterStatus = await client.AppsV1.ReplaceNamespacedDeploymentStatusAsync(afterMain, "s", "default");
        Assert.Equal(2, afterStatus.Spec.Replicas);
        Assert.Equal(5, afterStatus.Status.Replicas);

        var patched = await client.AppsV1.PatchNamespacedDeploymentStatusAsync(
            new V1Patch("{\"spec\":{\"replicas\":4},\"status\":{\"replicas\":6}}", V1Patch.PatchType.MergePatch), "s", "default");
        Assert.Equal(2, patched.Spec.Replicas);
        Assert.Equal(6, patched.Status.Replicas);
    }
}
