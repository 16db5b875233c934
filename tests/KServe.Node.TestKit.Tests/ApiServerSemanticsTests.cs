using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using KServe.Node.TestKit.ApiServer;

namespace KServe.Node.TestKit.Tests;

/// <summary>The test API server's apiserver semantics, driven through the official KubernetesClient over HTTP.</summary>
public sealed class ApiServerSemanticsTests : IAsyncLifetime
{
    private const string WidgetCrd = """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.com}
        spec:
          group: example.com
          scope: Cluster
          names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
          versions:
          - name: v1
            served: true
            storage: true
            subresources: {status: {}}
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec:
                    type: object
                    required: [size]
                    properties:
                      size: {type: integer, minimum: 0}
                      color: {type: string, enum: [red, blue]}
                      uri: {type: string, x-kubernetes-validations: [{rule: "self == oldSelf", message: "uri is immutable"}]}
                  status: {type: object, x-kubernetes-preserve-unknown-fields: true}
        """;

    private TestApiServer _server = null!;
    private Kubernetes _client = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await TestApiServer.StartAsync(new TestApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(100) });
        _client = _server.CreateClient("semantics-test");
        await _client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(KubernetesYaml.Deserialize<V1CustomResourceDefinition>(WidgetCrd));
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    private static async Task<HttpOperationException> Fails(Func<Task> call) => await Assert.ThrowsAsync<HttpOperationException>(call);

    [Fact]
    public async Task Stale_resourceVersion_update_is_a_409_conflict()
    {
        var cm = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "a" }, Data = new Dictionary<string, string> { ["k"] = "v" } }, "default");
        var stale = cm.Metadata.ResourceVersion;
        cm.Data["k"] = "v2";
        var updated = await _client.CoreV1.ReplaceNamespacedConfigMapAsync(cm, "a", "default");
        Assert.NotEqual(stale, updated.Metadata.ResourceVersion);
        cm.Metadata.ResourceVersion = stale;
        var e = await Fails(() => _client.CoreV1.ReplaceNamespacedConfigMapAsync(cm, "a", "default"));
        Assert.Equal(HttpStatusCode.Conflict, e.Response.StatusCode);
        Assert.Contains("\"reason\":\"Conflict\"", e.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_of_an_existing_name_is_AlreadyExists_and_generateName_makes_unique_names()
    {
        await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "dup" } }, "default");
        var e = await Fails(() => _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "dup" } }, "default"));
        Assert.Equal(HttpStatusCode.Conflict, e.Response.StatusCode);
        Assert.Contains("AlreadyExists", e.Response.Content, StringComparison.Ordinal);
        var g1 = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { GenerateName = "gen-" } }, "default");
        var g2 = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { GenerateName = "gen-" } }, "default");
        Assert.StartsWith("gen-", g1.Metadata.Name, StringComparison.Ordinal);
        Assert.NotEqual(g1.Metadata.Name, g2.Metadata.Name);
    }

    [Fact]
    public async Task Generation_moves_with_spec_only_and_status_subresource_changes_only_status()
    {
        await _client.CustomObjects.CreateClusterCustomObjectAsync(Widget("w1", 1), "example.com", "v1", "widgets");
        var afterSpec = Json(await _client.CustomObjects.PatchClusterCustomObjectAsync(
            new V1Patch("""{"spec":{"size":3}}""", V1Patch.PatchType.MergePatch), "example.com", "v1", "widgets", "w1"));
        Assert.Equal(2, afterSpec.GetProperty("metadata").GetProperty("generation").GetInt64());
        var afterStatus = Json(await _client.CustomObjects.PatchClusterCustomObjectStatusAsync(
            new V1Patch("""{"status":{"ok":true},"spec":{"size":9}}""", V1Patch.PatchType.MergePatch), "example.com", "v1", "widgets", "w1"));
        Assert.Equal(2, afterStatus.GetProperty("metadata").GetProperty("generation").GetInt64());
        Assert.Equal(3, afterStatus.GetProperty("spec").GetProperty("size").GetInt32());
        Assert.True(afterStatus.GetProperty("status").GetProperty("ok").GetBoolean());
        // A main-resource update ignores status.
        var replaced = Json(await _client.CustomObjects.PatchClusterCustomObjectAsync(
            new V1Patch("""{"status":{"ok":false}}""", V1Patch.PatchType.MergePatch), "example.com", "v1", "widgets", "w1"));
        Assert.True(replaced.GetProperty("status").GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task Schema_violations_answer_422_naming_each_field_and_unknown_fields_are_pruned()
    {
        var e = await Fails(() => _client.CustomObjects.CreateClusterCustomObjectAsync(
            new { apiVersion = "example.com/v1", kind = "Widget", metadata = new { name = "bad" }, spec = new { size = -1, color = "green" } },
            "example.com", "v1", "widgets"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        var status = JsonDocument.Parse(e.Response.Content).RootElement;
        Assert.Equal("Invalid", status.GetProperty("reason").GetString());
        var fields = status.GetProperty("details").GetProperty("causes").EnumerateArray().Select(c => c.GetProperty("field").GetString()).ToList();
        Assert.Equal(["spec.size", "spec.color"], fields);
        var missing = await Fails(() => _client.CustomObjects.CreateClusterCustomObjectAsync(
            new { apiVersion = "example.com/v1", kind = "Widget", metadata = new { name = "bad2" }, spec = new { color = "red" } },
            "example.com", "v1", "widgets"));
        Assert.Contains("spec.size: Required value", missing.Response.Content, StringComparison.Ordinal);
        var created = Json(await _client.CustomObjects.CreateClusterCustomObjectAsync(
            new { apiVersion = "example.com/v1", kind = "Widget", metadata = new { name = "ok" }, spec = new { size = 1, extra = 5 } },
            "example.com", "v1", "widgets"));
        Assert.False(created.GetProperty("spec").TryGetProperty("extra", out _));
    }

    [Fact]
    public async Task Immutability_rule_self_equals_oldSelf_refuses_a_change()
    {
        await _client.CustomObjects.CreateClusterCustomObjectAsync(
            new { apiVersion = "example.com/v1", kind = "Widget", metadata = new { name = "im" }, spec = new { size = 1, uri = "s3://a" } },
            "example.com", "v1", "widgets");
        var e = await Fails(() => _client.CustomObjects.PatchClusterCustomObjectAsync(
            new V1Patch("""{"spec":{"uri":"s3://b"}}""", V1Patch.PatchType.MergePatch), "example.com", "v1", "widgets", "im"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        Assert.Contains("uri is immutable", e.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Label_and_field_selectors_filter_lists()
    {
        foreach (var (name, tier) in new[] { ("n1", "gpu"), ("n2", "cpu"), ("n3", "gpu") })
        {
            await _client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new() { Name = name, Labels = new Dictionary<string, string> { ["tier"] = tier } } });
        }
        Assert.Equal(["n1", "n3"], (await _client.CoreV1.ListNodeAsync(labelSelector: "tier=gpu")).Items.Select(n => n.Metadata.Name));
        Assert.Equal(["n2"], (await _client.CoreV1.ListNodeAsync(labelSelector: "tier notin (gpu)")).Items.Select(n => n.Metadata.Name));
        Assert.Equal(["n3"], (await _client.CoreV1.ListNodeAsync(fieldSelector: "metadata.name=n3")).Items.Select(n => n.Metadata.Name));
        Assert.Equal(["n1"], (await _client.CoreV1.ListNodeAsync(labelSelector: "tier in (gpu,x)", fieldSelector: "metadata.name!=n3")).Items.Select(n => n.Metadata.Name));
    }

    [Fact]
    public async Task Finalizers_hold_deletion_until_removed()
    {
        await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "f", Finalizers = ["example.com/hold"] } }, "default");
        await _client.CoreV1.DeleteNamespacedConfigMapAsync("f", "default");
        var marked = await _client.CoreV1.ReadNamespacedConfigMapAsync("f", "default");
        Assert.NotNull(marked.Metadata.DeletionTimestamp);
        marked.Metadata.Finalizers = [];
        await _client.CoreV1.ReplaceNamespacedConfigMapAsync(marked, "f", "default");
        var e = await Fails(() => _client.CoreV1.ReadNamespacedConfigMapAsync("f", "default"));
        Assert.Equal(HttpStatusCode.NotFound, e.Response.StatusCode);
    }

    [Fact]
    public async Task Deleting_an_owner_garbage_collects_its_dependents()
    {
        var owner = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "owner" } }, "default");
        var ownerRef = new V1OwnerReference { ApiVersion = "v1", Kind = "ConfigMap", Name = "owner", Uid = owner.Metadata.Uid, Controller = true };
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new() { Name = "child", OwnerReferences = [ownerRef] } }, "default");
        var other = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "other" } }, "default");
        var shared = new V1Secret
        {
            Metadata = new() { Name = "shared", OwnerReferences = [ownerRef, new V1OwnerReference { ApiVersion = "v1", Kind = "ConfigMap", Name = "other", Uid = other.Metadata.Uid }] },
        };
        await _client.CoreV1.CreateNamespacedSecretAsync(shared, "default");
        await _client.CoreV1.DeleteNamespacedConfigMapAsync("owner", "default");
        var secrets = (await _client.CoreV1.ListNamespacedSecretAsync("default")).Items.Select(s => s.Metadata.Name).ToList();
        Assert.Equal(["shared"], secrets);
    }

    [Fact]
    public async Task Watch_resumes_from_a_resourceVersion_with_bookmarks()
    {
        var list = await _client.CoreV1.ListNamespacedConfigMapAsync("default");
        var events = new List<string>();
        await foreach (var (type, obj) in _client.CoreV1.WatchListNamespacedConfigMapAsync("default", allowWatchBookmarks: true,
            resourceVersion: list.Metadata.ResourceVersion, cancellationToken: TestContext.Current.CancellationToken))
        {
            events.Add($"{type}:{obj.Metadata.Name}");
            if (events.Count == 1)
            {
                // Changes after the watch opened arrive in order; a bookmark follows while idle.
                await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "w" } }, "default");
                await _client.CoreV1.DeleteNamespacedConfigMapAsync("w", "default");
            }
            if (events.Contains("Deleted:w") && events[^1].StartsWith("Bookmark", StringComparison.Ordinal))
            {
                break;
            }
            if (events.Count == 1 && type != WatchEventType.Bookmark)
            {
                break;
            }
        }
        Assert.Contains("Added:w", events);
        Assert.True(events.IndexOf("Added:w") < events.IndexOf("Deleted:w"));
        Assert.Equal("Bookmark:", events[^1]);
    }

    [Fact]
    public async Task Watch_from_a_compacted_resourceVersion_gets_410_Gone()
    {
        var list = await _client.CoreV1.ListNamespacedConfigMapAsync("default");
        await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "x" } }, "default");
        _server.Compact();
        var errors = new List<Exception>();
        try
        {
            await foreach (var _ in _client.CoreV1.WatchListNamespacedConfigMapAsync("default", resourceVersion: list.Metadata.ResourceVersion,
                onError: errors.Add, cancellationToken: TestContext.Current.CancellationToken))
            {
            }
        }
        catch (KubernetesException thrown)
        {
            errors.Add(thrown);
        }
        var e = Assert.IsType<KubernetesException>(Assert.Single(errors));
        Assert.Equal(410, e.Status.Code);
    }

    [Fact]
    public async Task Requests_are_recorded_with_verb_resource_and_user_agent()
    {
        _server.ClearRequests();
        using var other = _server.CreateClient("other-component");
        await other.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "r" } }, "default");
        await other.CoreV1.ListNodeAsync();
        var mine = _server.Requests.Where(r => r.UserAgent.Contains("other-component", StringComparison.Ordinal)).ToList();
        Assert.Equal([("create", "configmaps", 201), ("list", "nodes", 200)], mine.Select(r => (r.Verb, r.Resource, r.StatusCode)));
    }

    private static object Widget(string name, int size) => new { apiVersion = "example.com/v1", kind = "Widget", metadata = new { name }, spec = new { size } };

    private static JsonElement Json(object o) => JsonSerializer.SerializeToElement(o);
}
