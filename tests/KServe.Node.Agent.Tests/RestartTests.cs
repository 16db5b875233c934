using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Tests.Servers;

namespace KServe.Node.Agent.Tests;

/// <summary>
/// The standalone agent process on a real root, stopped and started again: it keeps what it holds, resumes
/// what it was fetching, and never deletes on an incomplete picture (the origin counts every byte it serves).
/// </summary>
public sealed class RestartTests
{
    private const int BigObject = 64 << 20;
    private const int Streams = 4;
    private const int Chunk = 1 << 20;

    internal static string CacheYaml(string name, string uri) => $"""
        apiVersion: serving.kserve.io/v1alpha1
        kind: LocalModelCache
        metadata:
          name: {name}
        spec:
          sourceModelUri: {uri}
          modelSize: 64Mi
          nodeGroups: [local]

        """;

    private static string[] Standalone(string config, string root, string grace = "00:10:00") =>
        ["standalone", "--config-dir", config, "--root", root, "--http-port", "{port}",
            $"--Download:Streams={Streams}", $"--Download:ChunkSizeBytes={Chunk}", $"--Download:GcGrace={grace}", "--Download:ReserveBytes=0"];

    private static void Note(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Fact]
    public async Task Standalone_agent_resumes_a_download_killed_midway_and_refetches_nothing_after_SIGTERM_or_SIGKILL()
    {
        await using var server = await RangeHttpServer.StartAsync();
        var data = TestData.Bytes(BigObject, 70);
        server.AddFile("big/weights.bin", data);
        server.BytesPerSecond = 32L << 20;
        using var tmp = new TempDir();
        var config = tmp.Sub("config");
        var root = tmp.Sub("root");
        Directory.CreateDirectory(config);
        var uri = server.BaseUrl + "/big/weights.bin";
        var key = Api.StorageKey.Compute(uri);
        await File.WriteAllTextAsync(Path.Combine(config, "big.yaml"), CacheYaml("big", uri));
        var file = Path.Combine(root, "models", key, "weights.bin");

        // 1. SIGKILL at 30-70 %, then a restart: only the missing part (plus what was in flight) is fetched.
        using (var first = AgentProcess.Start(Standalone(config, root)))
        {
            await server.WhenServedAtLeast(BigObject * 4 / 10).WaitAsync(TimeSpan.FromSeconds(60));
            await first.KillAsync();
        }
        var before = server.BytesServed;
        Assert.InRange(before, BigObject * 0.3, BigObject * 0.7);
        Assert.False(File.Exists(file));
        server.BytesPerSecond = null;
        using (var second = AgentProcess.Start(Standalone(config, root)))
        {
            await second.WaitForLine("Resuming " + key);
            await second.WaitForLine("Downloaded " + key);
            var after = server.BytesServed - before;
            var bound = BigObject - before + Streams * Chunk;
            Note($"standalone SIGKILL mid-download: killed at {before} of {BigObject} bytes; fetched after the restart {after}, bound {bound}");
            Assert.True(after <= bound, $"fetched {after} bytes after the restart; at most {bound}");
            Assert.Equal(TestData.Sha256(data), TestData.Sha256File(file));

            // 2. SIGTERM and a restart.
            await second.TerminateAsync();
        }
        foreach (var stop in new[] { "SIGTERM", "SIGKILL" })
        {
            var served = server.BytesServed;
            using var agent = AgentProcess.Start(Standalone(config, root));
            await agent.WaitForLine("Cache ready: 1 models desired, 1 already on disk");
            var status = await agent.StatusAsync();
            var model = Assert.Single(status.Models);
            Assert.Equal((ModelStates.Downloaded, (long)BigObject), (model.State, model.BytesDone));
            Note($"standalone restart after {stop}: {server.BytesServed - served} bytes fetched");
            Assert.Equal(served, server.BytesServed);
            Assert.Equal(TestData.Sha256(data), TestData.Sha256File(file));
            if (stop == "SIGTERM")
            {
                // 3. The next round restarts after a SIGKILL of the idle agent.
                await agent.KillAsync();
            }
        }
    }

    [Fact]
    public async Task Deleted_config_file_keeps_its_model_for_the_grace_period_and_a_broken_one_keeps_it_across_a_restart()
    {
        await using var server = await RangeHttpServer.StartAsync();
        var models = new Dictionary<string, byte[]>
        {
            ["a"] = TestData.Bytes(1 << 20, 71),
            ["b"] = TestData.Bytes(1 << 20, 72),
            ["c"] = TestData.Bytes(1 << 20, 73),
        };
        foreach (var (name, bytes) in models)
        {
            server.AddFile($"{name}/model.gguf", bytes);
        }
        using var tmp = new TempDir();
        string Uri(string name) => $"{server.BaseUrl}/{name}/model.gguf";
        string Folder(string name) => Path.Combine(tmp.Sub("root"), "models", Api.StorageKey.Compute(Uri(name)));
        var config = tmp.Sub("config");
        var root = tmp.Sub("root");
        Directory.CreateDirectory(config);
        foreach (var name in models.Keys)
        {
            await File.WriteAllTextAsync(Path.Combine(config, name + ".yaml"), CacheYaml(name, Uri(name)));
        }
        const int GraceSeconds = 3;
        var args = Standalone(config, root, $"00:00:0{GraceSeconds}");

        using (var agent = AgentProcess.Start(args))
        {
            foreach (var name in models.Keys)
            {
                await agent.WaitForLine("Downloaded " + Api.StorageKey.Compute(Uri(name)));
            }
            // One agent per root: a second one says so in one line and exits.
            using (var second = AgentProcess.Start(args))
            {
                Assert.Equal(2, await second.WaitForExitAsync(TimeSpan.FromSeconds(60)));
                var line = Assert.Single(second.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
                Assert.Contains("already uses the cache root", line, StringComparison.Ordinal);
            }

            // A half-saved file: b stays, and the error shows in /status.
            await File.WriteAllTextAsync(Path.Combine(config, "b.yaml"), "apiVersion: serving.kserve.io/v1alpha1\nkind: LocalModelCache\nmetadata:\n  name: [b\n");
            await agent.WaitForLine("b.yaml: not valid YAML");
            var status = await agent.StatusAsync();
            Assert.Contains(status.ConfigErrors, e => e.StartsWith("b.yaml: not valid YAML", StringComparison.Ordinal) && e.Contains("last good content", StringComparison.Ordinal));
            Assert.Equal(ModelStates.Downloaded, status.Models.Single(m => m.Name == "b").State);

            // A deleted file: a is kept for the grace period, then collected.
            File.Delete(Path.Combine(config, "a.yaml"));
            await agent.WaitForLine($"Model {Api.StorageKey.Compute(Uri("a"))} is no longer desired");
            var absentAt = DateTime.UtcNow;
            Assert.True(Directory.Exists(Folder("a")));
            await agent.WaitForLine("Collected");
            var kept = DateTime.UtcNow - absentAt;
            Note($"deleted config file: the model was kept {kept.TotalSeconds:0.0} s (grace {GraceSeconds} s)");
            Assert.True(kept >= TimeSpan.FromSeconds(GraceSeconds - 1), $"collected after {kept}");
            Assert.False(Directory.Exists(Folder("a")));
            Assert.True(Directory.Exists(Folder("b")));
            await agent.TerminateAsync();
        }

        // After a restart b.yaml is still broken: its last good parse (under .state/) keeps b through a whole
        // grace period in which c, deleted meanwhile, is collected.
        File.Delete(Path.Combine(config, "c.yaml"));
        var served = server.BytesServed;
        using (var agent = AgentProcess.Start(args))
        {
            await agent.WaitForLine("b.yaml: not valid YAML");
            await agent.WaitForLine("Collected");
            Assert.False(Directory.Exists(Folder("c")));
            Assert.Equal(TestData.Sha256(models["b"]), TestData.Sha256File(Path.Combine(Folder("b"), "model.gguf")));
            var status = await agent.StatusAsync();
            Assert.Equal(ModelStates.Downloaded, status.Models.Single(m => m.Name == "b").State);
            Assert.Equal(served, server.BytesServed);
        }
    }
}
