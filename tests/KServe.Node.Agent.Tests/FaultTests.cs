using System.Diagnostics;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Tests.Servers;
using KServe.Node.TestKit.Net;
using KServe.Node.TestKit.S3;

namespace KServe.Node.Agent.Tests;

/// <summary>Faults at real boundaries: a source that dies mid-object, corrupt bytes, a full disk, a killed agent.</summary>
public sealed class FaultTests
{
    private const int BigObject = 64 << 20;

    [Fact]
    public async Task S3_source_killed_midway_comes_back_and_the_download_resumes_without_refetching()
    {
        await using var s3rver = await S3rverProcess.StartAsync();
        using var s3 = S3TestClient.For(s3rver.Endpoint);
        await s3.PutBucketAsync("big");
        var data = TestData.Bytes(BigObject, 30);
        await s3.PutAsync("big", "model/weights.bin", data);
        await using var proxy = new FaultProxy(s3rver.Port) { KillAfterBytes = BigObject / 2 };
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, new DownloadOptions
        {
            Streams = 4, ChunkSizeBytes = 8 << 20, ReserveBytes = 0,
            // A long retry window: on a loaded machine the restart may take a while to be noticed.
            MaxAttempts = 60, RetryMaxDelay = TimeSpan.FromSeconds(2),
        });

        h.Engine.SetDesired([EngineHarness.Spec("big", "s3://big/model", S3TestClient.Settings(proxy.Endpoint))]);
        await proxy.Killed.WaitAsync(TimeSpan.FromSeconds(60));
        var sentAtKill = proxy.BytesSent;
        var during = h.Engine.Snapshot().Single();
        Assert.Equal(ModelStates.Downloading, during.State);
        proxy.Restart();
        // Generous: under a loaded machine a 64 MB transfer through the proxy and s3rver can take minutes.
        var v = await h.WaitFor("big", ModelStates.Downloaded, TimeSpan.FromSeconds(300));

        Assert.InRange(sentAtKill, BigObject * 0.3, BigObject * 0.7);
        Assert.True(proxy.BytesSent < BigObject * 1.5, $"the source sent {proxy.BytesSent} bytes for a {BigObject}-byte object");
        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(h.Store.ModelPath(v.StorageKey), "weights.bin")));
    }

    [Fact]
    public async Task Server_sending_corrupted_bytes_gives_ModelDownloadError_and_nothing_under_models()
    {
        await using var server = await RangeHttpServer.StartAsync();
        server.AddFile("m/model.gguf", TestData.Bytes(5 << 20, 31));
        server.Corrupt["m/model.gguf"] = true;
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);

        h.Engine.SetDesired([EngineHarness.Spec("bad", server.BaseUrl + "/m/model.gguf")]);
        var v = await h.WaitFor("bad", ModelStates.Error);

        Assert.Equal(nameof(FailureReason.ChecksumMismatch), v.Reason);
        Assert.Contains("checksum mismatch for model.gguf", v.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(h.Store.ModelsDir));
        Assert.Null(h.Store.GetManifest(v.StorageKey));
    }

    [Fact]
    public async Task Disk_full_on_a_small_tmpfs_fails_clearly_with_no_partial_model_and_other_models_untouched()
    {
        using var tmp = new TempDir();
        var root = tmp.Sub("cache");
        Directory.CreateDirectory(root);
        await Mount($"-t tmpfs -o size=40m tmpfs {root}");
        try
        {
            await using var server = await RangeHttpServer.StartAsync();
            var small = TestData.Bytes(8 << 20, 32);
            server.AddFile("a/model.bin", small);
            // A stream of unknown length gets past the free-space check and meets ENOSPC while writing.
            server.AddFile("b/model.bin", TestData.Bytes(48 << 20, 33));
            server.Unsized["b/model.bin"] = true;
            // A sized model that cannot fit is refused before a byte is written.
            server.AddFile("c/model.bin", TestData.Bytes(48 << 20, 34));
            await using var h = new EngineHarness(root);

            h.Engine.SetDesired([EngineHarness.Spec("a", server.BaseUrl + "/a/model.bin")]);
            var a = await h.WaitFor("a", ModelStates.Downloaded);
            h.Engine.SetDesired([
                EngineHarness.Spec("a", server.BaseUrl + "/a/model.bin"),
                EngineHarness.Spec("b", server.BaseUrl + "/b/model.bin"),
                EngineHarness.Spec("c", server.BaseUrl + "/c/model.bin"),
            ]);
            var b = await h.WaitFor("b", ModelStates.Error);
            var c = await h.WaitFor("c", ModelStates.Error);

            Assert.Equal(nameof(FailureReason.DiskFull), b.Reason);
            Assert.StartsWith("disk full: no space left on device", b.Message, StringComparison.Ordinal);
            Assert.Equal(nameof(FailureReason.InsufficientStorage), c.Reason);
            Assert.StartsWith("not enough free disk: model needs 48 MiB more", c.Message, StringComparison.Ordinal);
            Assert.Equal([a.StorageKey], Directory.GetDirectories(h.Store.ModelsDir).Select(Path.GetFileName).ToList());
            Assert.Empty(Directory.GetFileSystemEntries(h.Store.StagingDir));
            Assert.Equal(TestData.Sha256(small), TestData.Sha256File(Path.Combine(h.Store.ModelPath(a.StorageKey), "model.bin")));
            Assert.Null(h.Store.CheckIntact(a.StorageKey));
        }
        finally
        {
            await Mount($"-l {root}", "umount");
        }
    }

    [Fact]
    public async Task A_wrong_folder_on_a_disk_too_small_for_two_copies_fails_clearly_and_the_old_copy_stays()
    {
        using var tmp = new TempDir();
        var root = tmp.Sub("cache");
        Directory.CreateDirectory(root);
        await Mount($"-t tmpfs -o size=40m tmpfs {root}");
        try
        {
            await using var server = await RangeHttpServer.StartAsync();
            server.AddFile("m/model.gguf", TestData.Bytes(24 << 20, 36));
            var uri = server.BaseUrl + "/m/model.gguf";
            await using var h = new EngineHarness(root);
            var folder = h.Store.ModelPath(Api.StorageKey.Compute(uri));
            Directory.CreateDirectory(folder);
            var old = TestData.Bytes(24 << 20, 37);
            await File.WriteAllBytesAsync(Path.Combine(folder, "model.gguf"), old);

            h.Engine.SetDesired([EngineHarness.Spec("m", uri)]);
            var v = await h.WaitFor("m", ModelStates.Error);

            Assert.Equal(nameof(FailureReason.InsufficientStorage), v.Reason);
            Assert.StartsWith("not enough free disk for a second copy while the current one is in use", v.Message, StringComparison.Ordinal);
            Assert.Equal(0, server.BytesServed);
            Assert.Equal(TestData.Sha256(old), TestData.Sha256File(Path.Combine(folder, "model.gguf")));
            Assert.Empty(Directory.GetFileSystemEntries(h.Store.StagingDir));
        }
        finally
        {
            await Mount($"-l {root}", "umount");
        }
    }

    [Fact]
    public async Task Download_verb_into_a_mount_point_stages_inside_it_and_replaces_what_was_there()
    {
        await using var server = await RangeHttpServer.StartAsync();
        var data = TestData.Bytes(2 << 20, 38);
        server.AddFile("m/model.gguf", data);
        using var tmp = new TempDir();
        // An emptyDir as an init container sees it: DEST is a mount point, so it cannot be renamed.
        var dest = tmp.Sub("mnt");
        Directory.CreateDirectory(dest);
        await Mount($"-t tmpfs -o size=80m tmpfs {dest}");
        try
        {
            await File.WriteAllBytesAsync(Path.Combine(dest, "model.gguf"), [1, 2, 3]);
            using var agent = AgentProcess.Start(["download", server.BaseUrl + "/m/model.gguf", dest]);

            Assert.True(await agent.WaitForExitAsync(TimeSpan.FromSeconds(60)) == 0, agent.Output);
            Assert.Equal(["model.gguf"], TestData.Tree(dest));
            Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(dest, "model.gguf")));
            Assert.Equal([dest], Directory.GetDirectories(tmp.Path));
            Assert.Empty(Directory.GetDirectories(dest));
        }
        finally
        {
            await Mount($"-l {dest}", "umount");
        }
    }

    [Fact]
    public async Task Download_verb_killed_with_SIGKILL_midway_publishes_nothing_and_resumes_fetching_only_the_missing_part()
    {
        const int Streams = 4, Chunk = 1 << 20;
        await using var server = await RangeHttpServer.StartAsync();
        var data = TestData.Bytes(BigObject, 35);
        server.AddFile("m/weights.bin", data);
        server.BytesPerSecond = 32L << 20;
        using var tmp = new TempDir();
        var dest = tmp.Sub("model");
        var uri = server.BaseUrl + "/m/weights.bin";
        string[] args = ["download", uri, dest, "--streams", "4", "--chunk-size", "1Mi"];

        using (var first = AgentProcess.Start(args))
        {
            await server.WhenServedAtLeast(BigObject * 4 / 10).WaitAsync(TimeSpan.FromSeconds(60));
            await first.KillAsync();
        }
        var before = server.BytesServed;
        // Nothing a server would load: DEST does not exist until the whole model is verified.
        Assert.False(Directory.Exists(dest));
        server.BytesPerSecond = null;

        using var second = AgentProcess.Start([.. args, "--verbose"]);
        var exit = await second.WaitForExitAsync(TimeSpan.FromSeconds(120));

        Assert.True(exit == 0, second.Output);
        Assert.Contains("Resuming", second.Output, StringComparison.Ordinal);
        Assert.Equal(["weights.bin"], TestData.Tree(dest));
        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(dest, "weights.bin")));
        Assert.Equal([dest], Directory.GetDirectories(tmp.Path));
        var after = server.BytesServed - before;
        var bound = BigObject - before + Streams * Chunk;
        TestContext.Current.TestOutputHelper?.WriteLine($"download verb: killed at {before} of {BigObject} bytes ({100.0 * before / BigObject:0}%); fetched after the restart {after}, bound {bound}");
        Assert.InRange(before, BigObject * 0.3, BigObject * 0.7);
        Assert.True(after <= bound, $"after the restart the origin served {after} bytes; at most {bound} (missing part + one chunk per stream)");
    }

    internal static async Task Mount(string args, string tool = "mount")
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args.Split(' '))
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {args} failed (mounting a tmpfs needs root, or ./test.sh's user namespace): {await p.StandardError.ReadToEndAsync()}");
        }
    }
}
