using k8s.Models;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Kubernetes;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Store;
using KServe.Node.Agent.Tests.Servers;
using KServe.Node.Api.V1Alpha1;

namespace KServe.Node.Agent.Tests;

/// <summary>
/// Folders the agent finds or must change: adoption of a matching folder, an atomic exchange of a wrong one,
/// filter changes, and two caches that disagree about one URI. The origin counts every byte it serves.
/// </summary>
public sealed class AdoptionTests
{
    private static readonly byte[] Config = "{\"architectures\":[\"LlamaForCausalLM\"]}"u8.ToArray();

    private static void Note(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    private static async Task<(RangeHttpServer Server, byte[] Q4, byte[] Q8, string Uri)> RepoAsync()
    {
        var server = await RangeHttpServer.StartAsync();
        var q4 = TestData.Bytes(2 << 20, 90);
        var q8 = TestData.Bytes(3 << 20, 91);
        server.AddListing("repo/", "config.json", "model-q4.gguf", "model-q8.gguf");
        server.AddFile("repo/config.json", Config);
        server.AddFile("repo/model-q4.gguf", q4);
        server.AddFile("repo/model-q8.gguf", q8);
        return (server, q4, q8, server.BaseUrl + "/repo/");
    }

    private static ModelSpec Spec(string name, string uri, string allow) => new(name, uri, new FileFilter(allow, null), SourceSettings.Empty);

    private static Task<IReadOnlyList<ModelStatusView>> WaitForManifest(EngineHarness h, string key, Func<ModelManifest, bool>? predicate = null) =>
        h.Engine.WaitForAsync(_ => h.Store.GetManifest(key) is { } m && (predicate is null || predicate(m)), TimeSpan.FromSeconds(60));

    [Fact]
    public async Task A_KServe_layout_folder_that_matches_the_source_is_adopted_with_nothing_fetched()
    {
        var (server, q4, _, uri) = await RepoAsync();
        await using var _ = server;
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);
        var key = Api.StorageKey.Compute(uri);
        var folder = h.Store.ModelPath(key);
        Directory.CreateDirectory(folder);
        await File.WriteAllBytesAsync(Path.Combine(folder, "config.json"), Config);
        await File.WriteAllBytesAsync(Path.Combine(folder, "model-q4.gguf"), q4);
        using var stop = new CancellationTokenSource();
        var states = h.RecordStates("llama", stop.Token);

        h.Engine.SetDesired([Spec("llama", uri, "model-q4.gguf,config.json")]);
        await WaitForManifest(h, key);
        await stop.CancelAsync();

        var m = h.Store.GetManifest(key)!;
        Note($"adoption: {server.BytesServed} bytes fetched; manifest origin={m.Origin}, verification={m.Verification}");
        Assert.Equal(0, server.BytesServed);
        Assert.Equal(("adopted", Verification.Checksum), (m.Origin, m.Verification));
        Assert.Equal(["llama"], m.Caches);
        Assert.Equal(["config.json", "model-q4.gguf"], m.Files.Select(f => f.Path));
        Assert.All(m.Files, f => Assert.NotNull(f.Sha256));
        Assert.Equal("model-q4.gguf,config.json", m.Filter!.AllowPatterns);
        lock (states)
        {
            Assert.Equal([ModelStates.Downloaded], states);
        }
    }

    [Fact]
    public async Task A_folder_that_does_not_match_is_exchanged_in_one_step_while_a_reader_keeps_reading_the_old_file()
    {
        var (server, q4, _, uri) = await RepoAsync();
        await using var _ = server;
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, new DownloadOptions { Streams = 4, ChunkSizeBytes = 1 << 20, ReserveBytes = 0, GcGrace = TimeSpan.FromHours(1) });
        var key = Api.StorageKey.Compute(uri);
        var folder = h.Store.ModelPath(key);
        Directory.CreateDirectory(folder);
        var wrong = TestData.Bytes(q4.Length, 92);
        await File.WriteAllBytesAsync(Path.Combine(folder, "config.json"), Config);
        await File.WriteAllBytesAsync(Path.Combine(folder, "model-q4.gguf"), wrong);
        // A pod that started before the swap: it has the old file open and reads it through.
        await using var reader = new FileStream(Path.Combine(folder, "model-q4.gguf"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var firstHalf = new byte[wrong.Length / 2];
        await reader.ReadExactlyAsync(firstHalf);
        using var stop = new CancellationTokenSource();
        var states = h.RecordStates("llama", stop.Token);

        h.Engine.SetDesired([Spec("llama", uri, "model-q4.gguf,config.json")]);
        await WaitForManifest(h, key);
        await stop.CancelAsync();

        var rest = new byte[wrong.Length - firstHalf.Length];
        await reader.ReadExactlyAsync(rest);
        Assert.Equal(TestData.Sha256(wrong), TestData.Sha256([.. firstHalf, .. rest]));
        Assert.Equal(TestData.Sha256(q4), TestData.Sha256File(Path.Combine(folder, "model-q4.gguf")));
        Assert.Equal(["config.json", "model-q4.gguf"], TestData.Tree(folder));
        // Only the wrong file was fetched; the matching one was linked into the new folder.
        Note($"exchange: {server.BytesServed} bytes fetched for a {q4.Length}-byte wrong file; old folder kept in .replaced/");
        Assert.Equal(q4.Length, server.BytesServed);
        var aside = Assert.Single(Directory.GetDirectories(h.Store.ReplacedDir));
        Assert.StartsWith(key + ".", Path.GetFileName(aside), StringComparison.Ordinal);
        Assert.Equal(TestData.Sha256(wrong), TestData.Sha256File(Path.Combine(aside, "model-q4.gguf")));
        h.Engine.Reconcile();
        Assert.True(Directory.Exists(aside), "the old folder is kept for the grace period");
        Assert.Empty(Directory.GetFileSystemEntries(h.Store.StagingDir));
        lock (states)
        {
            Assert.Equal([ModelStates.Downloaded], states);
        }
    }

    [Fact]
    public async Task A_folder_whose_origin_is_unreachable_is_left_as_it_is_and_keeps_its_status()
    {
        var (server, _, _, uri) = await RepoAsync();
        await server.DisposeAsync();
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, new DownloadOptions { MaxAttempts = 1, ReserveBytes = 0, GcGrace = TimeSpan.Zero });
        var key = Api.StorageKey.Compute(uri);
        var folder = h.Store.ModelPath(key);
        Directory.CreateDirectory(folder);
        await File.WriteAllBytesAsync(Path.Combine(folder, "model-q4.gguf"), [1, 2, 3]);

        h.Engine.SetDesired([Spec("llama", uri, "model-q4.gguf")]);
        var v = await h.Engine.WaitForAsync(s => s.Single().Reason is not null, TimeSpan.FromSeconds(60));

        Assert.Equal((ModelStates.Downloaded, nameof(FailureReason.SourceUnavailable)), (v[0].State, v[0].Reason));
        Assert.Equal(["model-q4.gguf"], TestData.Tree(folder));
        Assert.Empty(Directory.GetFileSystemEntries(h.Store.StagingDir));
    }

    [Fact]
    public async Task Changing_allowPatterns_fetches_only_the_new_files_drops_the_others_and_keeps_the_status()
    {
        var (server, q4, q8, uri) = await RepoAsync();
        await using var _ = server;
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);
        var key = Api.StorageKey.Compute(uri);
        h.Engine.SetDesired([Spec("llama", uri, "model-q4.gguf,config.json")]);
        await h.WaitFor("llama", ModelStates.Downloaded);
        Assert.Equal(q4.Length + Config.Length, server.BytesServed);
        var served = server.BytesServed;
        using var stop = new CancellationTokenSource();
        var states = h.RecordStates("llama", stop.Token);

        h.Engine.SetDesired([Spec("llama", uri, "model-q8.gguf,config.json")]);
        await WaitForManifest(h, key, m => m.Filter?.AllowPatterns == "model-q8.gguf,config.json");
        await stop.CancelAsync();

        var fetched = server.BytesServed - served;
        Note($"allowPatterns q4 -> q8: {fetched} bytes fetched (model-q8.gguf is {q8.Length}); config.json kept");
        Assert.Equal(q8.Length, fetched);
        var folder = h.Store.ModelPath(key);
        Assert.Equal(["config.json", "model-q8.gguf"], TestData.Tree(folder));
        Assert.Equal(TestData.Sha256(q8), TestData.Sha256File(Path.Combine(folder, "model-q8.gguf")));
        Assert.Equal(["config.json", "model-q8.gguf"], h.Store.GetManifest(key)!.Files.Select(f => f.Path));
        lock (states)
        {
            Assert.Equal([ModelStates.Downloaded], states);
        }
    }

    [Fact]
    public async Task Two_caches_with_one_URI_and_different_filters_the_later_gets_a_Conflict_naming_the_other_and_the_disk_stays()
    {
        var (server, _, _, uri) = await RepoAsync();
        await using var _ = server;
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);
        var key = Api.StorageKey.Compute(uri);
        h.Engine.SetDesired([Spec("q4", uri, "model-q4.gguf")]);
        await h.WaitFor("q4", ModelStates.Downloaded);
        var (served, tree) = (server.BytesServed, TestData.Tree(tmp.Path));

        h.Engine.SetDesired([Spec("q4", uri, "model-q4.gguf"), Spec("team-a/q8", uri, "model-q8.gguf")]);
        var conflict = await h.WaitFor("team-a/q8", ModelStates.Error);
        h.Engine.Reconcile();

        Assert.Equal(nameof(FailureReason.Conflict), conflict.Reason);
        Assert.StartsWith("q4 caches the same sourceModelUri with a different filter", conflict.Message, StringComparison.Ordinal);
        Assert.Equal(ModelStates.Downloaded, h.Engine.Snapshot().Single(v => v.StatusKey == "q4").State);
        Assert.Equal(served, server.BytesServed);
        Assert.Equal(tree, TestData.Tree(tmp.Path));
        Assert.Equal(["q4"], h.Store.GetManifest(key)!.Caches);

        // In Kubernetes mode the LocalModelNode carries it as a condition too.
        var lmn = new LocalModelNode
        {
            Metadata = new V1ObjectMeta { Name = "worker-1", Generation = 1 },
            Spec = new LocalModelNodeSpec
            {
                LocalModels = [new LocalModelInfo { ModelName = "q4", SourceModelUri = uri }, new LocalModelInfo { ModelName = "q8", Namespace = "team-a", SourceModelUri = uri }],
            },
        };
        Assert.True(NodeStatusWriter.Apply(lmn, h.Engine.Snapshot(), h.Engine, DateTimeOffset.UtcNow));
        var c = Assert.Single(lmn.Status!.Conditions!, c => c.Type == "Conflict");
        Assert.Equal("True", c.Status);
        Assert.StartsWith("team-a/q8: q4 caches the same sourceModelUri", c.Message, StringComparison.Ordinal);
        Assert.Equal(ModelStates.Error, lmn.Status.ModelStatus!["team-a/q8"]);
        Assert.Equal("Conflict: q4 caches the same sourceModelUri with a different filter (allow=[model-q4.gguf] ignore=[], here allow=[model-q8.gguf] ignore=[]); its folder is kept as it is; give this cache the same filter or another URI",
            lmn.Status.ModelProgress!["team-a/q8"].Message);
    }
}
