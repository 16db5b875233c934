using KServe.Node.Hosting.Cli;
using System.Net;
using System.Text.Json;
using KServe.Node.Agent.Cli;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Standalone;
using KServe.Node.Agent.Tests.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace KServe.Node.Agent.Tests;

/// <summary>Standalone mode end to end: YAML folder → engine → disk, status view, metrics, health, list verb.</summary>
[Collection(nameof(ProcessMetrics))]
public sealed class StandaloneTests
{
    private static string CacheYaml(string name, string uri, string? allow = null) => $"""
        apiVersion: serving.kserve.io/v1alpha1
        kind: LocalModelCache
        metadata:
          name: {name}
        spec:
          sourceModelUri: {uri}
          modelSize: 10Mi
          nodeGroups: [local]
        {(allow is null ? "" : $"  storage:\n    parameters:\n      allowPatterns: \"{allow}\"\n")}
        """;

    [Fact]
    public async Task Caches_in_the_config_folder_are_downloaded_reported_and_collected_when_removed()
    {
        await using var server = await RangeHttpServer.StartAsync();
        var data = TestData.Bytes(3 << 20, 40);
        server.AddFile("m/model.gguf", data);
        server.AddListing("repo/", "a.gguf", "b.gguf");
        server.AddFile("repo/a.gguf", [1, 2]);
        server.AddFile("repo/b.gguf", [3]);
        using var tmp = new TempDir();
        var config = tmp.Sub("config");
        Directory.CreateDirectory(config);
        await File.WriteAllTextAsync(Path.Combine(config, "tiny.yaml"), CacheYaml("tiny", server.BaseUrl + "/m/model.gguf"));
        await File.WriteAllTextAsync(Path.Combine(config, "more.yaml"),
            CacheYaml("only-a", server.BaseUrl + "/repo/", allow: "a.*") + "\n---\n" + CacheYaml("broken", "") + "\n---\n" + """
            apiVersion: serving.kserve.io/v1alpha1
            kind: LocalModelNodeGroup
            metadata: {name: local}
            spec: {storageLimit: 1Gi}
            """);

        await using var app = AgentHost.BuildStandalone(AgentCli.App.Parse(["standalone", "--config-dir", config, "--root", tmp.Sub("root"), "--http-port", "0", "--Download:GcGrace=00:00:00"]));
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var engine = app.Services.GetRequiredService<CacheEngine>();
        using var http = new HttpClient { BaseAddress = new Uri(url) };

        await engine.WaitForAsync(s => s.Count == 2 && s.All(v => v.State == ModelStates.Downloaded), TimeSpan.FromSeconds(60));
        var tinyKey = KServe.Node.Api.StorageKey.Compute(server.BaseUrl + "/m/model.gguf");
        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(tmp.Sub("root"), "models", tinyKey, "model.gguf")));
        Assert.Equal(["a.gguf"], TestData.Tree(Path.Combine(tmp.Sub("root"), "models", KServe.Node.Api.StorageKey.Compute(server.BaseUrl + "/repo/"))));

        var status = JsonSerializer.Deserialize(await http.GetStringAsync("/status"), StatusJsonContext.Default.AgentStatusDto)!;
        Assert.Equal("standalone", status.Mode);
        Assert.Equal(1L << 30, status.Storage.LimitBytes);
        var tiny = status.Models.Single(m => m.Name == "tiny");
        Assert.Equal((ModelStates.Downloaded, data.LongLength, data.LongLength, tinyKey), (tiny.State, tiny.BytesDone, tiny.BytesTotal!.Value, tiny.StorageKey));
        Assert.Equal(["more.yaml: LocalModelCache/broken: spec.sourceModelUri is required"], status.ConfigErrors);

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/readyz")).StatusCode);
        var metrics = await http.GetStringAsync("/metrics");
        Assert.True(metrics.Contains("kserve_node_models{state=\"ModelDownloaded\"} 2", StringComparison.Ordinal), string.Join("\n", metrics.Split("\n").Where(l => l.StartsWith("kserve_node_models", StringComparison.Ordinal))));
        foreach (var family in new[] { "kserve_node_cache_used_bytes", "kserve_node_cache_capacity_bytes", "kserve_node_download_bytes_total",
                     "kserve_node_download_duration_seconds_bucket", "kserve_node_gc_bytes_total" })
        {
            Assert.Contains(family, metrics, StringComparison.Ordinal);
        }

        var listing = new StringWriter();
        Assert.Equal(0, await ListCommand.RunAsync(AgentCli.App.Parse(["list", "--url", url]), listing, CancellationToken.None));
        Assert.Matches(@"tiny\s+ModelDownloaded\s+3 MiB\s+100%", listing.ToString());

        File.Delete(Path.Combine(config, "tiny.yaml"));
        await engine.WaitForAsync(s => s.Count == 1, TimeSpan.FromSeconds(30));
        engine.Reconcile();
        Assert.False(Directory.Exists(Path.Combine(tmp.Sub("root"), "models", tinyKey)));
        Assert.False(File.Exists(Path.Combine(tmp.Sub("root"), ".state", tinyKey + ".json")));

        var offline = new StringWriter();
        Assert.Equal(0, await ListCommand.RunAsync(AgentCli.App.Parse(["list", "--root", tmp.Sub("root")]), offline, CancellationToken.None));
        Assert.Contains("/repo/", offline.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("/m/model.gguf", offline.ToString(), StringComparison.Ordinal);
        await app.StopAsync();
    }

    [Fact]
    public async Task A_model_over_the_node_groups_storage_limit_fails_with_a_clear_message()
    {
        await using var server = await RangeHttpServer.StartAsync();
        server.AddFile("big.bin", TestData.Bytes(3 << 20, 41));
        using var tmp = new TempDir();
        var config = tmp.Sub("config");
        Directory.CreateDirectory(config);
        await File.WriteAllTextAsync(Path.Combine(config, "c.yaml"), CacheYaml("big", server.BaseUrl + "/big.bin"));

        await using var app = AgentHost.BuildStandalone(AgentCli.App.Parse(["standalone", "--config-dir", config, "--root", tmp.Sub("root"), "--http-port", "0", "--storage-limit", "2Mi"]));
        await app.StartAsync();
        var engine = app.Services.GetRequiredService<CacheEngine>();
        var snap = await engine.WaitForAsync(s => s.Any(v => v.State == ModelStates.Error), TimeSpan.FromSeconds(30));

        Assert.Equal("StorageLimitExceeded", snap[0].Reason);
        Assert.Equal("model needs 3 MiB but the storage limit leaves 2 MiB for it", snap[0].Message);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(tmp.Sub("root"), "models")));
        await app.StopAsync();
    }

    [Fact]
    public async Task A_config_file_that_never_parsed_stops_all_collection_until_it_does()
    {
        await using var server = await RangeHttpServer.StartAsync();
        server.AddFile("b/model.gguf", TestData.Bytes(1 << 20, 42));
        using var tmp = new TempDir();
        var config = tmp.Sub("config");
        var root = tmp.Sub("root");
        Directory.CreateDirectory(config);
        // A model from an earlier configuration, now listed nowhere.
        var oldKey = KServe.Node.Api.StorageKey.Compute("s3://old/model");
        Directory.CreateDirectory(Path.Combine(root, "models", oldKey));
        await File.WriteAllBytesAsync(Path.Combine(root, "models", oldKey, "m.bin"), [1]);
        await File.WriteAllTextAsync(Path.Combine(config, "b.yaml"), "kind: LocalModelCache\nmetadata: {name: [b\n");

        await using var app = AgentHost.BuildStandalone(AgentCli.App.Parse(["standalone", "--config-dir", config, "--root", root, "--http-port", "0", "--Download:GcGrace=00:00:00"]));
        await app.StartAsync();
        var engine = app.Services.GetRequiredService<CacheEngine>();
        await engine.WaitForAsync(_ => engine.Ready, TimeSpan.FromSeconds(30));
        engine.Reconcile();

        Assert.True(Directory.Exists(Path.Combine(root, "models", oldKey)), "collected while a config file had never parsed");
        var error = Assert.Single(app.Services.GetRequiredService<StandaloneService>().ConfigErrors);
        Assert.StartsWith("b.yaml: not valid YAML", error, StringComparison.Ordinal);
        Assert.EndsWith("nothing is collected until it parses", error, StringComparison.Ordinal);

        await File.WriteAllTextAsync(Path.Combine(config, "b.yaml"), CacheYaml("b", server.BaseUrl + "/b/model.gguf"));
        await engine.WaitForAsync(s => s.Any(v => v.StatusKey == "b" && v.State == ModelStates.Downloaded), TimeSpan.FromSeconds(30));
        Assert.False(Directory.Exists(Path.Combine(root, "models", oldKey)));
        await app.StopAsync();
    }

    [Fact]
    public void Standalone_without_its_required_options_names_the_missing_one()
    {
        var e = Assert.Throws<CliException>(() => AgentHost.BuildStandalone(AgentCli.App.Parse(["standalone", "--root", "/tmp/x"])));
        Assert.Equal("missing --config-dir DIR: folder of LocalModelCache YAML files (watched) (see 'node-agent standalone --help')", e.Message);
    }
}

/// <summary>
/// The agent's Prometheus families live in the process-wide default registry (one agent per process in
/// production). Tests that assert exact gauge values through /metrics run alone, so that engines of other
/// tests running in parallel cannot overwrite those gauges meanwhile.
/// </summary>
[CollectionDefinition(nameof(ProcessMetrics), DisableParallelization = true)]
public sealed class ProcessMetrics;
