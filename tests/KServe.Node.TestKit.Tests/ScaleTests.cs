using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace KServe.Node.TestKit.Tests;

/// <summary>Concurrent writers and many watchers at the size of the cache-controller benchmark (1,000 nodes).</summary>
public sealed class ScaleTests
{
    [Fact]
    public async Task A_thousand_concurrent_node_writes_reach_every_watcher_in_resourceVersion_order()
    {
        await using var server = await Fixture.StartAsync();
        using var client = server.CreateClient();
        var start = await client.CoreV1.ListNodeAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        async Task<List<long>> WatchAll()
        {
            var rvs = new List<long>();
            await foreach (var (type, node) in client.CoreV1.WatchListNodeAsync(resourceVersion: start.Metadata.ResourceVersion, cancellationToken: cts.Token))
            {
                Assert.Equal(WatchEventType.Added, type);
                rvs.Add(long.Parse(node.Metadata.ResourceVersion));
                if (rvs.Count == 1000)
                {
                    break;
                }
            }
            return rvs;
        }
        var watchers = Enumerable.Range(0, 5).Select(_ => Task.Run(WatchAll)).ToList();

        await Parallel.ForEachAsync(Enumerable.Range(0, 1000), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cts.Token }, async (i, ct) =>
        {
            await client.CoreV1.CreateNodeAsync(new V1Node
            {
                Metadata = new V1ObjectMeta { Name = $"node-{i:D4}", Labels = new Dictionary<string, string> { ["group"] = (i % 10).ToString() } },
            }, cancellationToken: ct);
        });

        foreach (var w in watchers)
        {
            var rvs = await w;
            Assert.Equal(1000, rvs.Count);
            Assert.Equal(rvs.Order(), rvs);
        }
        var group3 = await client.CoreV1.ListNodeAsync(labelSelector: "group=3");
        Assert.Equal(100, group3.Items.Count);
        Assert.Equal(1000, (await client.CoreV1.ListNodeAsync()).Items.Count);
    }

    [Fact]
    public async Task The_project_CRDs_load_in_process_and_validate_a_LocalModelCache()
    {
        await using var server = await Fixture.StartAsync();
        await server.ApplyCrdsFromDirectoryAsync(RepoPaths.Crds);
        using var client = server.CreateClient();
        var cache = new JsonObject
        {
            ["apiVersion"] = "serving.kserve.io/v1alpha1",
            ["kind"] = "LocalModelCache",
            ["metadata"] = new JsonObject { ["name"] = "m" },
            ["spec"] = new JsonObject { ["sourceModelUri"] = "s3://b/m", ["modelSize"] = "2Gi", ["nodeGroups"] = new JsonArray("g"), ["unknownField"] = 1 },
        };
        var created = JsonNode.Parse(JsonSerializer.Serialize(await client.CustomObjects.CreateClusterCustomObjectAsync(cache, "serving.kserve.io", "v1alpha1", "localmodelcaches")))!;
        Assert.Null(created["spec"]!["unknownField"]);
        await server.ApplyCrdsFromDirectoryAsync(RepoPaths.Crds);
        var again = await client.ApiextensionsV1.ReadCustomResourceDefinitionAsync("localmodelcaches.serving.kserve.io");
        Assert.Equal(1, again.Metadata.Generation);
    }
}
