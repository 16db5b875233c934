using k8s;
using k8s.Models;

namespace KServe.Node.TestKit.Tests;

// Selector syntax per the Kubernetes docs "Labels and Selectors" (equality- and set-based) and
// "Field Selectors" (supported fields per kind; unsupported ones are a 400).
public sealed class SelectorTests
{
    [Fact]
    public async Task Label_selectors_filter_lists()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("a", new Dictionary<string, string> { ["tier"] = "web", ["env"] = "prod" }), "default");
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("b", new Dictionary<string, string> { ["tier"] = "db" }), "default");
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("c"), "default");

        async Task<string[]> Names(string selector) =>
            [.. (await client.CoreV1.ListNamespacedConfigMapAsync("default", labelSelector: selector)).Items.Select(i => i.Metadata.Name)];

        Assert.Equal(["a"], await Names("tier=web"));
        Assert.Equal(["a"], await Names("tier==web,env"));
        Assert.Equal(["b", "c"], await Names("tier!=web"));
        Assert.Equal(["a", "b"], await Names("tier in (web,db)"));
        Assert.Equal(["b", "c"], await Names("tier notin (web)"));
        Assert.Equal(["b", "c"], await Names("!env"));
    }

    [Fact]
    public async Task Field_selectors_cover_names_and_pod_nodeName_and_refuse_unknown_fields()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        foreach (var (name, node) in new[] { ("p1", "n1"), ("p2", "n2"), ("p3", "n1") })
        {
            await client.CoreV1.CreateNamespacedPodAsync(new V1Pod
            {
                Metadata = new V1ObjectMeta { Name = name },
                Spec = new V1PodSpec { NodeName = node, Containers = [new V1Container { Name = "c", Image = "i" }] },
            }, "default");
        }
        var onN1 = await client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: "spec.nodeName=n1");
        Assert.Equal(["p1", "p3"], onN1.Items.Select(p => p.Metadata.Name));
        var byName = await client.CoreV1.ListNamespacedPodAsync("default", fieldSelector: "metadata.name=p2");
        Assert.Equal(["p2"], byName.Items.Select(p => p.Metadata.Name));
        var notN1 = await client.CoreV1.ListNamespacedPodAsync("default", fieldSelector: "spec.nodeName!=n1,metadata.namespace=default");
        Assert.Equal(["p2"], notN1.Items.Select(p => p.Metadata.Name));

        var (code, status) = await Fixture.FailsAsync(() => client.CoreV1.ListNamespacedConfigMapAsync("default", fieldSelector: "data.k=v"));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, code);
        Assert.Equal("field label not supported: data.k", status.Message);
    }

    [Fact]
    public async Task Event_field_selectors_on_involvedObject()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        foreach (var (name, target) in new[] { ("e1", "x"), ("e2", "y") })
        {
            await client.CoreV1.CreateNamespacedEventAsync(new Corev1Event
            {
                Metadata = new V1ObjectMeta { Name = name },
                InvolvedObject = new V1ObjectReference { Kind = "LocalModelCache", Name = target },
                Reason = "Test",
            }, "default");
        }
        var evs = await client.CoreV1.ListNamespacedEventAsync("default", fieldSelector: "involvedObject.name=y,involvedObject.kind=LocalModelCache");
        Assert.Equal(["e2"], evs.Items.Select(e => e.Metadata.Name));
    }
}
