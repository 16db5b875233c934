using KServe.Node.TestKit.ApiServer;
using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace KServe.Node.TestKit.Tests;

// Watch semantics per the Kubernetes docs "API Concepts": "Efficient detection of changes" (events after the
// given resourceVersion; synthetic ADDED for the current state without one), "Watch bookmarks" and
// "410 Gone responses" (an ERROR event with a Status code 410 for a too-old resourceVersion).
public sealed class WatchTests
{
    [Fact]
    public async Task Watch_from_a_list_resourceVersion_sees_changes_in_order()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("before"), "default");
        var list = await client.CoreV1.ListNamespacedConfigMapAsync("default");
        using var cts = new CancellationTokenSource(Fixture.Timeout);
        var events = new List<(WatchEventType, string, string?)>();
        var watch = client.CoreV1.WatchListNamespacedConfigMapAsync("default", resourceVersion: list.Metadata.ResourceVersion, cancellationToken: cts.Token);
        var mutations = Task.Run(async () =>
        {
            await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("w"), "default");
            await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"data\":{\"k\":\"2\"}}", V1Patch.PatchType.MergePatch), "w", "default");
            await client.CoreV1.DeleteNamespacedConfigMapAsync("w", "default");
        });
        await foreach (var (type, obj) in watch)
        {
            events.Add((type, obj.Metadata.Name, (obj.Data is not null && obj.Data.TryGetValue("k", out var k) ? k : null)));
            if (type == WatchEventType.Deleted)
            {
                break;
            }
        }
        await mutations;
        Assert.Equal([(WatchEventType.Added, "w", "v"), (WatchEventType.Modified, "w", "2"), (WatchEventType.Deleted, "w", "2")], events);
    }

    [Fact]
    public async Task Watch_without_resourceVersion_starts_with_synthetic_adds_and_honours_selectors()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("a", new Dictionary<string, string> { ["x"] = "1" }), "default");
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("b"), "default");
        using var cts = new CancellationTokenSource(Fixture.Timeout);
        var seen = new List<(WatchEventType, string)>();
        var relabel = false;
        await foreach (var (type, obj) in client.CoreV1.WatchListNamespacedConfigMapAsync("default", labelSelector: "x=1", cancellationToken: cts.Token))
        {
            seen.Add((type, obj.Metadata.Name));
            if (!relabel)
            {
                relabel = true;
                // b starts matching (ADDED for this watch), then a stops matching (DELETED for this watch).
                await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"metadata\":{\"labels\":{\"x\":\"1\"}}}", V1Patch.PatchType.MergePatch), "b", "default");
                await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"metadata\":{\"labels\":{\"x\":null}}}", V1Patch.PatchType.MergePatch), "a", "default");
            }
            if (seen.Count == 3)
            {
                break;
            }
        }
        Assert.Equal([(WatchEventType.Added, "a"), (WatchEventType.Added, "b"), (WatchEventType.Deleted, "a")], seen);
    }

    [Fact]
    public async Task Bookmarks_arrive_when_asked_and_carry_the_current_resourceVersion()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var list = await client.CoreV1.ListNamespacedConfigMapAsync("default");
        var created = await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("bm"), "default");
        using var cts = new CancellationTokenSource(Fixture.Timeout);
        var types = new List<WatchEventType>();
        string? bookmarkRv = null;
        await foreach (var (type, obj) in client.CoreV1.WatchListNamespacedConfigMapAsync("default", allowWatchBookmarks: true,
            resourceVersion: list.Metadata.ResourceVersion, cancellationToken: cts.Token))
        {
            types.Add(type);
            if (type == WatchEventType.Bookmark)
            {
                bookmarkRv = obj.Metadata.ResourceVersion;
                break;
            }
        }
        Assert.Equal([WatchEventType.Added, WatchEventType.Bookmark], types);
        Assert.True(long.Parse(bookmarkRv!) >= long.Parse(created.Metadata.ResourceVersion));
    }

    [Fact]
    public async Task No_bookmarks_unless_asked()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var list = await client.CoreV1.ListNamespacedConfigMapAsync("default");
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("nb"), "default");
        using var cts = new CancellationTokenSource(Fixture.Timeout);
        var types = new List<WatchEventType>();
        // The server closes the watch after timeoutSeconds; bookmarks would have come every 100 ms meanwhile.
        await foreach (var (type, _) in client.CoreV1.WatchListNamespacedConfigMapAsync("default", resourceVersion: list.Metadata.ResourceVersion,
            timeoutSeconds: 1, cancellationToken: cts.Token))
        {
            types.Add(type);
        }
        Assert.Equal([WatchEventType.Added], types);
    }

    [Fact]
    public async Task A_compacted_resourceVersion_gets_an_ERROR_event_with_410_Expired()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var old = await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("old"), "default");
        await client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"data\":{\"k\":\"2\"}}", V1Patch.PatchType.MergePatch), "old", "default");
        server.Compact();

        using var cts = new CancellationTokenSource(Fixture.Timeout);
        var errors = new List<Exception>();
        var events = 0;
        await foreach (var _ in client.CoreV1.WatchListNamespacedConfigMapAsync("default", resourceVersion: old.Metadata.ResourceVersion,
            onError: errors.Add, cancellationToken: cts.Token))
        {
            events++;
        }
        Assert.Equal(0, events);
        var e = Assert.IsType<KubernetesException>(Assert.Single(errors));
        Assert.Equal(410, e.Status.Code);
        Assert.Equal("Expired", e.Status.Reason);
        Assert.StartsWith("too old resource version: ", e.Status.Message, StringComparison.Ordinal);

        // The raw stream is exactly one ERROR event, as the apiserver sends it.
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        var raw = await http.GetStringAsync(new Uri($"api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old.Metadata.ResourceVersion}", UriKind.Relative));
        var ev = JsonNode.Parse(raw.Trim())!;
        Assert.Equal("ERROR", ev["type"]!.GetValue<string>());
        Assert.Equal("Status", ev["object"]!["kind"]!.GetValue<string>());
        Assert.Equal(410, ev["object"]!["code"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_watch_from_the_current_resourceVersion_survives_compaction()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("x"), "default");
        server.Compact();
        var list = await client.CoreV1.ListNamespacedConfigMapAsync("default");
        using var cts = new CancellationTokenSource(Fixture.Timeout);
        var watch = client.CoreV1.WatchListNamespacedConfigMapAsync("default", resourceVersion: list.Metadata.ResourceVersion, cancellationToken: cts.Token);
        var create = client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("y"), "default");
        await foreach (var (type, obj) in watch)
        {
            Assert.Equal((WatchEventType.Added, "y"), (type, obj.Metadata.Name));
            break;
        }
        await create;
    }

    [Fact]
    public async Task The_event_history_is_bounded_and_older_watches_expire()
    {
        await using var server = await TestApiServer.StartAsync(new TestApiServerOptions { WatchHistorySize = 3 });
        using var client = server.CreateClient();
        var first = await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("h0"), "default");
        for (var i = 1; i <= 4; i++)
        {
            await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap($"h{i}"), "default");
        }
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        var raw = await http.GetStringAsync(new Uri($"api/v1/namespaces/default/configmaps?watch=true&resourceVersion={first.Metadata.ResourceVersion}", UriKind.Relative));
        Assert.Equal(410, JsonNode.Parse(raw.Trim())!["object"]!["code"]!.GetValue<int>());
    }

    [Fact]
    public async Task DropWatches_cuts_open_watch_connections()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        using var cts = new CancellationTokenSource(Fixture.Timeout);
        await client.CoreV1.CreateNamespacedConfigMapAsync(Fixture.ConfigMap("d"), "default");
        var ended = false;
        try
        {
            await foreach (var (type, _) in client.CoreV1.WatchListNamespacedConfigMapAsync("default", cancellationToken: cts.Token))
            {
                Assert.Equal(WatchEventType.Added, type);
                server.DropWatches();
            }
            ended = true;
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            ended = true;
        }
        Assert.True(ended);
        Assert.False(cts.IsCancellationRequested);
    }

    [Fact]
    public async Task Watch_of_a_single_object_by_field_selector()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var node = await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = "n1" } });
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = "n2" } });
        using var cts = new CancellationTokenSource(Fixture.Timeout);
        var watch = client.CoreV1.WatchListNodeAsync(fieldSelector: "metadata.name=n1", resourceVersion: node.Metadata.ResourceVersion, cancellationToken: cts.Token);
        var change = Task.Run(async () =>
        {
            await client.CoreV1.PatchNodeAsync(new V1Patch("{\"metadata\":{\"labels\":{\"a\":\"b\"}}}", V1Patch.PatchType.MergePatch), "n2");
            await client.CoreV1.PatchNodeAsync(new V1Patch("{\"metadata\":{\"labels\":{\"a\":\"b\"}}}", V1Patch.PatchType.MergePatch), "n1");
        });
        await foreach (var (type, obj) in watch)
        {
            Assert.Equal((WatchEventType.Modified, "n1"), (type, obj.Metadata.Name));
            break;
        }
        await change;
        Assert.Contains(server.Requests, r => r is { Verb: "watch", Resource: "nodes", StatusCode: (int)HttpStatusCode.OK });
    }
}
