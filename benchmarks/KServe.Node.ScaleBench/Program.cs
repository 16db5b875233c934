using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using k8s;
using k8s.Models;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Runtime;
using KServe.Node.TestKit;
using KServe.Node.TestKit.ApiServer;

// Cache-controller scale benchmark: N nodes in 5 node groups and 100 caches on the test API server. Measures the time
// from applying the caches until every LocalModelNode holds exactly its expected entries, the API requests the
// controller made meanwhile, and the controller process's peak memory (VmHWM). Prints one JSON line per run.
// Usage: KServe.Node.ScaleBench [nodeCounts...] (default: 100 1000)
var sizes = args.Length > 0 ? args.Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray() : [100, 1000];
const int Groups = 5;
const int Caches = 100;
ResourceType.Register<LocalModelCache>(namespaced: false);
ResourceType.Register<LocalModelNodeGroup>(namespaced: false);
ResourceType.Register<LocalModelNode>(namespaced: false);

foreach (var nodes in sizes)
{
    Console.WriteLine(JsonSerializer.Serialize(await RunAsync(nodes)));
}

async Task<Dictionary<string, object>> RunAsync(int nodeCount)
{
    await using var server = await TestApiServer.StartAsync();
    await server.ApplyCrdsFromDirectoryAsync(Path.Combine(RepoPaths.Root, "daemonset", "crds"));
    var client = server.CreateClient("scalebench");
    await new ResourceClient<V1Namespace>(client).CreateAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "kserve-localmodel-jobs" } });
    for (var g = 0; g < Groups; g++)
    {
        await new ResourceClient<LocalModelNodeGroup>(client).CreateAsync(Group($"group-{g}"));
    }

    var nodeClient = new ResourceClient<V1Node>(client);
    await Parallel.ForEachAsync(Enumerable.Range(0, nodeCount), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
    {
        var node = await nodeClient.CreateAsync(new V1Node
        {
            ApiVersion = "v1",
            Kind = "Node",
            Metadata = new V1ObjectMeta { Name = $"node-{i:D4}", Labels = new Dictionary<string, string> { ["pool"] = $"group-{i % Groups}" } },
            Status = new V1NodeStatus { Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }] },
        }, ct);
        if (node.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") != true)
        {
            node.Status = new V1NodeStatus { Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }] };
            await nodeClient.ReplaceStatusAsync(node, ct);
        }
    });

    // Expected: each node holds the caches of its group (cache c is on group c % 5).
    var expected = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
    for (var i = 0; i < nodeCount; i++)
    {
        expected[$"node-{i:D4}"] = [.. Enumerable.Range(0, Caches).Where(c => c % Groups == i % Groups).Select(c => $"cache-{c:D3}")];
    }

    await using var controller = CacheControllerProcess.Start(server,
        ["--CacheController:LlmInferenceServices=Disabled", "--Logging:LogLevel:Default=Warning"],
        new Dictionary<string, string> { ["DOTNET_gcServer"] = "0" });
    try
    {
        // The controller has synced when it has listed LocalModelNodes (its last informer) and watches them.
        await using var lmns = new Informer<LocalModelNode>(new ResourceClient<LocalModelNode>(client));
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var complete = new HashSet<string>(StringComparer.Ordinal);
        var gate = new Lock();
        lmns.AddEventHandler(e =>
        {
            var name = e.Object.Metadata.Name;
            var ok = e.Type != ResourceEventType.Deleted && expected.TryGetValue(name, out var want)
                && e.Object.Spec.LocalModels.Count == want.Count && e.Object.Spec.LocalModels.All(m => want.Contains(m.ModelName));
            lock (gate)
            {
                if (ok)
                {
                    complete.Add(name);
                }
                else
                {
                    complete.Remove(name);
                }

                if (complete.Count == nodeCount)
                {
                    done.TrySetResult();
                }
            }
        });
        lmns.Start();
        await lmns.WaitForSyncAsync();
        await WaitForControllerWatchesAsync(server, controller, TimeSpan.FromMinutes(2));

        var t0 = DateTimeOffset.UtcNow;
        var sw = Stopwatch.StartNew();
        var cacheClient = new ResourceClient<LocalModelCache>(client);
        for (var c = 0; c < Caches; c++)
        {
            await cacheClient.CreateAsync(new LocalModelCache
            {
                Metadata = new V1ObjectMeta { Name = $"cache-{c:D3}" },
                Spec = new LocalModelCacheSpec
                {
                    SourceModelUri = $"s3://models/model-{c:D3}",
                    ModelSize = new ResourceQuantity("1Gi"),
                    NodeGroups = [$"group-{c % Groups}"],
                },
            });
        }

        await done.Task.WaitAsync(TimeSpan.FromMinutes(10));
        var elapsed = sw.Elapsed;
        var requests = server.Requests.Count(r => IsController(r) && r.Time >= t0);

        // The controller goes on after the LocalModelNodes are right (PV/PVCs, cache status): wait until it has been
        // quiet for 3 s, then count everything it did.
        var quiet = TimeSpan.FromSeconds(3);
        DateTimeOffset last;
        while (true)
        {
            last = server.Requests.Where(r => IsController(r) && r.Time >= t0 && r.Verb != "watch").Select(r => r.Time).DefaultIfEmpty(t0).Max();
            if (DateTimeOffset.UtcNow - last >= quiet)
            {
                break;
            }

            await Task.Delay(250);
        }

        var during = server.Requests.Where(r => IsController(r) && r.Time >= t0).ToList();
        var byKind = during.GroupBy(r => $"{r.Verb} {r.Resource}{(r.Subresource is null ? "" : "/" + r.Subresource)}")
            .OrderByDescending(g => g.Count()).Take(10).ToDictionary(g => g.Key, g => g.Count());
        var pvs = (await new ResourceClient<V1PersistentVolume>(client).ListAsync()).Items.Count;
        var pvcs = (await new ResourceClient<V1PersistentVolumeClaim>(client).ListAsync("kserve-localmodel-jobs")).Items.Count;
        var readyCaches = (await new ResourceClient<LocalModelCache>(client).ListAsync()).Items
            .Count(c => c.Status?.Copies?.Total == nodeCount / Groups);
        return new Dictionary<string, object>
        {
            ["benchmark"] = "cache-controller-scale",
            ["nodes"] = nodeCount,
            ["groups"] = Groups,
            ["caches"] = Caches,
            ["lmnEntries"] = expected.Values.Sum(v => v.Count),
            ["secondsToConverge"] = Math.Round(elapsed.TotalSeconds, 2),
            ["controllerRequestsToConverge"] = requests,
            ["secondsToSettle"] = Math.Round((last - t0).TotalSeconds, 2),
            ["controllerRequestsToSettle"] = during.Count,
            ["controllerRequestsByKind"] = byKind,
            ["persistentVolumes"] = pvs,
            ["persistentVolumeClaims"] = pvcs,
            ["cachesWithAllCopiesCounted"] = readyCaches,
            ["controllerPeakRssMiB"] = Math.Round(PeakRssMiB(controller.Id), 1),
        };
    }
    catch
    {
        Console.Error.WriteLine($"[controller output]\n{controller.Output}");
        throw;
    }
}

static bool IsController(RecordedRequest r) => r.UserAgent != "scalebench";

static async Task WaitForControllerWatchesAsync(TestApiServer server, CacheControllerProcess controller, TimeSpan timeout)
{
    // The controller is ready when it has opened a watch on LocalModelNodes (informers list, then watch).
    var deadline = Stopwatch.StartNew();
    while (!server.Requests.Any(r => IsController(r) && r.Verb == "watch" && r.Resource == "localmodelnodes"))
    {
        if (controller.HasExited)
        {
            throw new InvalidOperationException($"the cache-controller exited with code {controller.ExitCode} before it started watching");
        }

        if (deadline.Elapsed > timeout)
        {
            throw new TimeoutException("the controller did not start watching");
        }

        await Task.Delay(50);
    }
}

static double PeakRssMiB(int pid)
{
    foreach (var line in File.ReadLines($"/proc/{pid}/status"))
    {
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
        {
            return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        }
    }

    return double.NaN;
}

static LocalModelNodeGroup Group(string name) => new()
{
    Metadata = new V1ObjectMeta { Name = name },
    Spec = new LocalModelNodeGroupSpec
    {
        StorageLimit = new ResourceQuantity("1Ti"),
        PersistentVolumeSpec = new V1PersistentVolumeSpec
        {
            AccessModes = ["ReadWriteOnce"],
            Capacity = new Dictionary<string, ResourceQuantity> { ["storage"] = new("1Ti") },
            HostPath = new V1HostPathVolumeSource { Path = "/models" },
            StorageClassName = "standard",
            NodeAffinity = new V1VolumeNodeAffinity
            {
                Required = new V1NodeSelector
                {
                    NodeSelectorTerms = [new V1NodeSelectorTerm
                    {
                        MatchExpressions = [new V1NodeSelectorRequirement { Key = "pool", OperatorProperty = "In", Values = [name] }],
                    }],
                },
            },
        },
        PersistentVolumeClaimSpec = new V1PersistentVolumeClaimSpec
        {
            AccessModes = ["ReadWriteOnce"],
            StorageClassName = "standard",
            Resources = new V1VolumeResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["storage"] = new("1Ti") } },
        },
    },
};
