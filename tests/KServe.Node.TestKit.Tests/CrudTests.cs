using System.Net;
using k8s;
using k8s.Models;
using KServe.Node.TestKit.ApiServer;

namespace KServe.Node.TestKit.Tests;

// Semantics checked against the Kubernetes API docs "API Concepts" (Resource versions; Efficient detection
// of changes) and "Object Names and IDs"; error shapes against k8s.io/apimachinery/pkg/api/errors.
public sealed class CrudTests
{
    [Fact]
    public async Task Create_get_list_delete_round_trip_with_server_assigned_metadata()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var created = await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("a"), "default");
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.False(string.IsNullOrEmpty(created.Metadata.ResourceVersion));
        Assert.Equal("default", created.Metadata.NamespaceProperty);

        var got = await client.CoreV1.ReadNamespacedConfigMapAsync("a", "default");
        Assert.Equal(created.Metadata.Uid, got.Metadata.Uid);
        Assert.Equal("v", got.Data["k"]);

        var list = await client.CoreV1.ListNamespacedConfigMapAsync("default");
        Assert.Equal(["a"], list.Items.Select(i => i.Metadata.Name));
        Assert.True(long.Parse(list.Metadata.ResourceVersion) >= long.Parse(created.Metadata.ResourceVersion));

        await client.CoreV1.DeleteNamespacedConfigMapAsync("a", "default");
        var (code, status) = await Fixture.FailsAsync(() => client.CoreV1.ReadNamespacedConfigMapAsync("a", "default"));
        Assert.Equal(HttpStatusCode.NotFound, code);
        Assert.Equal("NotFound", status.Reason);
        Assert.Equal("configmaps \"a\" not found", status.Message);
    }

    [Fact]
    public async Task Creating_an_existing_name_is_409_AlreadyExists()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        await client.AppsV1.CreateNamespacedDeploymentAsync(Fixture.Deployment("d"), "default");
        var (code, status) = await Fixture.FailsAsync(() => client.AppsV1.CreateNamespacedDeploymentAsync(Fixture.Deployment("d"), "default"));
        Assert.Equal(HttpStatusCode.Conflict, code);
        Assert.Equal("AlreadyExists", status.Reason);
        Assert.Equal("deployments.apps \"d\" already exists", status.Message);
        Assert.Equal(409, status.Code);
    }

    [Fact]
    public async Task Update_with_a_stale_resourceVersion_is_409_Conflict()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var first = await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("c"), "default");
        var copyA = await client.CoreV1.ReadNamespacedConfigMapAsync("c", "default");
        var copyB = await client.CoreV1.ReadNamespacedConfigMapAsync("c", "default");
        copyA.Data["k"] = "a";
        var updated = await client.CoreV1.ReplaceNamespacedConfigMapAsync(copyA, "c", "default");
        Assert.NotEqual(first.Metadata.ResourceVersion, updated.Metadata.ResourceVersion);

        copyB.Data["k"] = "b";
        var (code, status) = await Fixture.FailsAsync(() => client.CoreV1.ReplaceNamespacedConfigMapAsync(copyB, "c", "default"));
        Assert.Equal(HttpStatusCode.Conflict, code);
        Assert.Equal("Conflict", status.Reason);
        Assert.Equal("Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again", status.Message);
        Assert.Equal("a", (await client.CoreV1.ReadNamespacedConfigMapAsync("c", "default")).Data["k"]);
    }

    [Fact]
    public async Task An_update_that_changes_nothing_keeps_the_resourceVersion()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var created = await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("n"), "default");
        var same = await client.CoreV1.ReplaceNamespacedConfigMapAsync(created, "n", "default");
        Assert.Equal(created.Metadata.ResourceVersion, same.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task GenerateName_gets_a_random_suffix()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var a = await client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { GenerateName = "gen-" } }, "default");
        var b = await client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { GenerateName = "gen-" } }, "default");
        Assert.StartsWith("gen-", a.Metadata.Name, StringComparison.Ordinal);
        Assert.Equal(9, a.Metadata.Name.Length);
        Assert.NotEqual(a.Metadata.Name, b.Metadata.Name);
    }

    [Fact]
    public async Task Bad_names_and_missing_namespaces_are_refused_like_the_apiserver()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var (code, status) = await Fixture.FailsAsync(() => client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("Bad_Name"), "default"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, code);
        Assert.Equal("Invalid", status.Reason);
        Assert.Equal("metadata.name", status.Details.Causes.Single().Field);

        (code, status) = await Fixture.FailsAsync(() => client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("x"), "nowhere"));
        Assert.Equal(HttpStatusCode.NotFound, code);
        Assert.Equal("namespaces \"nowhere\" not found", status.Message);

        await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "nowhere" } });
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("x"), "nowhere");
    }

    [Fact]
    public async Task Deleting_a_namespace_deletes_its_contents()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "tmp" } });
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("x"), "tmp");
        await client.CoreV1.DeleteNamespaceAsync("tmp");
        Assert.Empty((await client.CoreV1.ListNamespacedConfigMapAsync("tmp")).Items);
        await Fixture.FailsAsync(() => client.CoreV1.ReadNamespaceAsync("tmp"));
    }

    [Fact]
    public async Task List_pages_with_limit_and_continue()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap($"p{i}"), "default");
        }
        var names = new List<string>();
        string? cont = null;
        do
        {
            var page = await client.CoreV1.ListNamespacedConfigMapAsync("default", limit: 2, continueParameter: cont);
            Assert.True(page.Items.Count <= 2);
            names.AddRange(page.Items.Select(i => i.Metadata.Name));
            cont = page.Metadata.ContinueProperty;
        }
        while (!string.IsNullOrEmpty(cont));
        Assert.Equal(["p0", "p1", "p2", "p3", "p4"], names);
    }

    [Fact]
    public async Task Every_request_is_recorded_with_verb_resource_and_user_agent()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient("my-controller");
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("r"), "default");
        await client.CoreV1.ReadNamespacedConfigMapAsync("r", "default");
        await Fixture.FailsAsync(() => client.AppsV1.ReadNamespacedDeploymentAsync("none", "default"));
        await client.CoreV1.ListNodeAsync();

        var reqs = server.Requests;
        Assert.Contains(reqs, r => r is { Verb: "create", Group: null, Version: "v1", Resource: "configmaps", Namespace: "default", StatusCode: 201 });
        Assert.Contains(reqs, r => r is { Verb: "get", Resource: "configmaps", Name: "r", StatusCode: 200 });
        Assert.Contains(reqs, r => r is { Verb: "get", Group: "apps", Resource: "deployments", Name: "none", StatusCode: 404 });
        Assert.Contains(reqs, r => r is { Verb: "list", Resource: "nodes", Namespace: null, StatusCode: 200 });
        Assert.All(reqs, r => Assert.StartsWith("my-controller", r.UserAgent, StringComparison.Ordinal));
        Assert.DoesNotContain(reqs, r => r.Verb == "delete");

        server.ClearRequests();
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task Unknown_resources_answer_404_and_unsupported_patch_types_415()
    {
        await using var server = await Fixture.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        var r = await http.GetAsync(new Uri("apis/nothing.io/v1/things", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        var s = KubernetesJson.Deserialize<V1Status>(await r.Content.ReadAsStringAsync());
        Assert.Equal("NotFound", s.Reason);

        using var client = server.CreateClient();
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("x"), "default");
        using var content = new StringContent("{}");
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/apply-patch+yaml");
        r = await http.PatchAsync(new Uri("api/v1/namespaces/default/configmaps/x", UriKind.Relative), content);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, r.StatusCode);

        using var bad = new StringContent("{not json");
        bad.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        r = await http.PostAsync(new Uri("api/v1/namespaces/default/configmaps", UriKind.Relative), bad);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);

        foreach (var shape in new[] { "{\"metadata\":{\"name\":5}}", "{\"metadata\":\"x\"}", "[1,2]", "{\"metadata\":{\"name\":\"y\",\"labels\":[1]}}" })
        {
            using var wrong = new StringContent(shape);
            wrong.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            r = await http.PostAsync(new Uri("api/v1/namespaces/default/configmaps", UriKind.Relative), wrong);
            Assert.True(r.StatusCode == HttpStatusCode.BadRequest, $"{shape}: {r.StatusCode} {await r.Content.ReadAsStringAsync()}");
            Assert.Equal("Status", KubernetesJson.Deserialize<V1Status>(await r.Content.ReadAsStringAsync()).Kind);
        }
    }
}
