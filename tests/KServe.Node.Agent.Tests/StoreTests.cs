using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Store;
using KServe.Node.Agent.Tests.Servers;

namespace KServe.Node.Agent.Tests;

/// <summary>The disk contract: completion marker, GC of unlisted keys, re-verification.</summary>
public sealed class StoreTests
{
    [Fact]
    public async Task Only_storage_keys_are_collected_and_only_after_a_desired_state_is_known()
    {
        using var tmp = new TempDir();
        var root = tmp.Path;
        var store = new ModelStore(root);
        Directory.CreateDirectory(Path.Combine(store.ModelsDir, "abc123def4567890"));
        File.WriteAllBytes(Path.Combine(store.ModelsDir, "abc123def4567890", "x.bin"), [1]);
        Directory.CreateDirectory(Path.Combine(store.StagingDir, "00000000000000aa.1234"));
        // KServe's agent names folders after the model; an admin may park anything here.
        Directory.CreateDirectory(Path.Combine(store.ModelsDir, "llama-7b"));
        File.WriteAllBytes(Path.Combine(store.ModelsDir, "llama-7b", "model.gguf"), [2]);
        Assert.Null(store.GetManifest("abc123def4567890"));
        Assert.Equal("not downloaded", store.CheckIntact("abc123def4567890"));
        await using var h = new EngineHarness(root);

        h.Engine.Reconcile();
        Assert.Equal(["abc123def4567890", "llama-7b"], Directory.GetDirectories(store.ModelsDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        h.Engine.SetDesired([]);
        await h.Engine.WaitForAsync(_ => h.Engine.Ready && !Directory.Exists(Path.Combine(store.ModelsDir, "abc123def4567890")), TimeSpan.FromSeconds(30));

        Assert.Equal(["llama-7b"], Directory.GetDirectories(store.ModelsDir).Select(Path.GetFileName));
        Assert.Empty(Directory.GetFileSystemEntries(store.StagingDir));
    }

    [Fact]
    public async Task A_folder_whose_manifest_names_another_URI_with_the_same_key_is_neither_served_nor_replaced()
    {
        await using var server = await RangeHttpServer.StartAsync();
        var data = TestData.Bytes(1 << 20, 90);
        server.AddFile("m.bin", data);
        using var tmp = new TempDir();
        var uri = server.BaseUrl + "/m.bin";
        var key = Api.StorageKey.Compute(uri);
        await using (var h = new EngineHarness(tmp.Path))
        {
            h.Engine.SetDesired([EngineHarness.Spec("m", uri)]);
            await h.WaitFor("m", ModelStates.Downloaded);
            var written = h.Store.GetManifest(key)!;
            Assert.Equal(ModelFetcher.UriHash(uri), written.SourceHash);
            // What a 64-bit collision leaves on disk: the folder of key K, downloaded for another URI.
            written.SourceHash = ModelFetcher.UriHash(uri + "?another");
            written.SourceUri = "https://elsewhere.example/other.bin";
            h.Store.WriteManifest(written);
        }
        var served = server.BytesServed;

        await using (var h = new EngineHarness(tmp.Path))
        {
            h.Engine.SetDesired([EngineHarness.Spec("m", uri)]);
            var v = await h.WaitFor("m", ModelStates.Error);
            Assert.Equal(nameof(FailureReason.Conflict), v.Reason);
            Assert.Contains("already holds https://elsewhere.example/other.bin", v.Message, StringComparison.Ordinal);
        }
        Assert.Equal(served, server.BytesServed);
        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(tmp.Path, "models", key, "m.bin")));
    }

    [Fact]
    public async Task A_key_removed_and_re_added_while_its_download_unwinds_is_downloaded_without_a_spurious_error()
    {
        await using var server = await RangeHttpServer.StartAsync();
        var data = TestData.Bytes(8 << 20, 51);
        server.AddFile("m.bin", data);
        server.BytesPerSecond = 16L << 20;
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, new DownloadOptions { Streams = 2, ChunkSizeBytes = 1 << 20, ReserveBytes = 0, GcGrace = TimeSpan.Zero });
        var spec = EngineHarness.Spec("m", server.BaseUrl + "/m.bin");
        using var stop = new CancellationTokenSource();
        var states = h.RecordStates("m", stop.Token);

        h.Engine.SetDesired([spec]);
        await server.WhenServedAtLeast(3 << 20).WaitAsync(TimeSpan.FromSeconds(30));
        // With no grace the staging may be collected once the old job has ended; what must not happen is two
        // jobs on one staging folder, which failed the model.
        h.Engine.SetDesired([]);
        h.Engine.Reconcile();
        h.Engine.SetDesired([spec]);
        server.BytesPerSecond = null;
        var v = await h.WaitFor("m", ModelStates.Downloaded);
        await stop.CancelAsync();

        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(h.Store.ModelPath(v.StorageKey), "m.bin")));
        lock (states)
        {
            Assert.DoesNotContain(ModelStates.Error, states);
        }
    }

    [Fact]
    public void Commit_interrupted_after_the_folder_rename_is_completed_from_the_pending_manifest()
    {
        using var tmp = new TempDir();
        var store = new ModelStore(tmp.Path);
        var staging = store.OpenStaging("1111222233334444");
        Directory.CreateDirectory(staging.FilesDir);
        File.WriteAllBytes(Path.Combine(staging.FilesDir, "m.bin"), [1, 2, 3]);
        store.Commit(staging, new ModelManifest { StorageKey = "1111222233334444", TotalBytes = 3, Files = [new ManifestFile { Path = "m.bin", Size = 3 }] }, DateTimeOffset.UtcNow);
        // Simulate a crash between the folder rename and the manifest rename.
        File.Move(Path.Combine(store.StateDir, "1111222233334444.json"), Path.Combine(store.StateDir, "1111222233334444.json.pending"));

        var m = store.GetManifest("1111222233334444");

        Assert.NotNull(m);
        Assert.True(File.Exists(Path.Combine(store.StateDir, "1111222233334444.json")));
        Assert.Null(store.CheckIntact("1111222233334444"));
    }

    [Fact]
    public async Task A_damaged_model_is_found_by_the_periodic_verification_and_downloaded_again()
    {
        await using var server = await RangeHttpServer.StartAsync();
        var data = TestData.Bytes(2 << 20, 50);
        server.AddFile("m.bin", data);
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);
        h.Engine.SetDesired([EngineHarness.Spec("m", server.BaseUrl + "/m.bin")]);
        var v = await h.WaitFor("m", ModelStates.Downloaded);
        var file = Path.Combine(h.Store.ModelPath(v.StorageKey), "m.bin");

        File.WriteAllBytes(file, [1, 2, 3]);
        // The periodic pass, run now rather than waiting for its timer.
        h.Engine.VerifyInterval = TimeSpan.Zero;
        h.Engine.Reconcile();
        h.Engine.VerifyInterval = TimeSpan.FromHours(1);
        Assert.Contains("no longer intact (file m.bin has 3 bytes, expected 2097152)", h.Logs.All, StringComparison.Ordinal);
        await h.Engine.WaitForAsync(s => s.Single().State == ModelStates.Downloaded && File.Exists(file) && new FileInfo(file).Length == data.Length, TimeSpan.FromSeconds(30));

        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(file));
    }

    [Theory]
    [InlineData("*.gguf", "model.gguf", true)]
    [InlineData("*.gguf", "sub/model.gguf", true)]
    [InlineData("*Q4_K_M*", "x.Q4_K_M.gguf", true)]
    [InlineData("model-0000[1-2]-of-*.gguf", "model-00002-of-00003.gguf", true)]
    [InlineData("model-0000[1-2]-of-*.gguf", "model-00003-of-00003.gguf", false)]
    [InlineData("config.json", "sub/config.json", false)]
    [InlineData("?.bin", "a.bin", true)]
    public void Globs_follow_fnmatch(string pattern, string path, bool expected) => Assert.Equal(expected, Glob.Matches(pattern, path));
}
