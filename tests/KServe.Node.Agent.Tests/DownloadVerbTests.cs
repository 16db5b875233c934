using KServe.Node.Hosting.Cli;
using KServe.Node.Agent.Cli;
using KServe.Node.Agent.Tests.Servers;

namespace KServe.Node.Agent.Tests;

/// <summary>The one-shot <c>download URI DEST</c> verb against a real loopback HTTP server.</summary>
public sealed class DownloadVerbTests
{
    private static async Task<(int Code, string Error)> Run(params string[] args)
    {
        var cl = AgentCli.App.Parse(args);
        var err = new StringWriter();
        var code = await DownloadCommand.RunAsync(cl, err, CancellationToken.None);
        return (code, err.ToString());
    }

    [Fact]
    public async Task Single_file_is_fetched_with_parallel_ranges_and_verified()
    {
        await using var server = await RangeHttpServer.StartAsync();
        var data = TestData.Bytes(9 << 20, 1);
        server.AddFile("models/tiny.gguf", data);
        using var tmp = new TempDir();
        var dest = tmp.Sub("out");

        var (code, error) = await Run("download", server.BaseUrl + "/models/tiny.gguf", dest, "--streams", "4", "--chunk-size", "1Mi");

        Assert.Equal("", error);
        Assert.Equal(0, code);
        Assert.Equal(["tiny.gguf"], TestData.Tree(dest));
        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(dest, "tiny.gguf")));
        Assert.True(server.RangeRequests >= 9, $"expected one ranged GET per 1 MiB chunk, saw {server.RangeRequests}");
    }

    [Fact]
    public async Task Listing_is_followed_recursively_and_filtered_by_allow_patterns()
    {
        await using var server = await RangeHttpServer.StartAsync();
        server.AddListing("repo/", "config.json", "weights/", "model-q4.gguf", "model-q8.gguf", "/elsewhere/x", "https://other.example/y", "?C=N;O=D");
        server.AddListing("repo/weights/", "part%201.bin");
        server.AddFile("repo/config.json", "{}"u8.ToArray());
        server.AddFile("repo/model-q4.gguf", TestData.Bytes(1000, 2));
        server.AddFile("repo/model-q8.gguf", TestData.Bytes(2000, 3));
        server.AddFile("repo/weights/part 1.bin", TestData.Bytes(3000, 4));
        using var tmp = new TempDir();

        var (code, error) = await Run("download", server.BaseUrl + "/repo/", tmp.Sub("all"));
        Assert.True(code == 0, error);
        Assert.Equal(["config.json", "model-q4.gguf", "model-q8.gguf", "weights/part 1.bin"], TestData.Tree(tmp.Sub("all")));

        (code, error) = await Run("download", server.BaseUrl + "/repo/", tmp.Sub("q4"), "--allow", "*.json,*q4*");
        Assert.True(code == 0, error);
        Assert.Equal(["config.json", "model-q4.gguf"], TestData.Tree(tmp.Sub("q4")));
    }

    [Fact]
    public async Task Corrupted_bytes_fail_with_a_checksum_error_and_leave_nothing()
    {
        await using var server = await RangeHttpServer.StartAsync();
        server.AddFile("m/model.bin", TestData.Bytes(3 << 20, 5));
        server.Corrupt["m/model.bin"] = true;
        using var tmp = new TempDir();
        var dest = tmp.Sub("out");

        var (code, error) = await Run("download", server.BaseUrl + "/m/model.bin", dest, "--chunk-size", "1Mi");

        Assert.Equal(1, code);
        Assert.StartsWith("download failed: ChecksumMismatch: checksum mismatch for model.bin: sha256 expected", error, StringComparison.Ordinal);
        Assert.Empty(TestData.Tree(dest));
    }

    [Fact]
    public async Task Listing_links_that_escape_the_folder_are_rejected_and_nothing_is_written_outside()
    {
        await using var server = await RangeHttpServer.StartAsync();
        server.AddListing("evil/", "ok.bin", "sub%2F..%2F..%2Fescaped.bin");
        server.AddFile("evil/ok.bin", [1, 2, 3]);
        server.AddFile("evil/sub/../../escaped.bin", [4]);
        using var tmp = new TempDir();
        var dest = tmp.Sub("out");

        var (code, error) = await Run("download", server.BaseUrl + "/evil/", dest);

        Assert.Equal(1, code);
        Assert.Contains("UnsafePath", error, StringComparison.Ordinal);
        Assert.Contains("sub/../../escaped.bin", error, StringComparison.Ordinal);
        // Only the staging beside DEST (kept for a resume) exists; DEST itself is never published.
        Assert.Equal([".out.kserve-node-staging"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).ToList());
        Assert.Empty(Directory.GetFiles(tmp.Path, "escaped.bin", SearchOption.AllDirectories));
        Assert.False(Directory.Exists(dest));
    }

    [Fact]
    public async Task Bad_usage_and_unknown_schemes_get_one_line_reasons()
    {
        using var tmp = new TempDir();
        var (code, error) = await Run("download", "ftp://host/x", tmp.Sub("o"));
        Assert.Equal(1, code);
        Assert.Equal("download failed: InvalidUri: unsupported scheme 'ftp://' in 'ftp://host/x'; supported: s3://, gs://, hf://, https://, http://", error.Trim());

        await Assert.ThrowsAsync<CliException>(() => Run("download", "s3://b/k"));
        var e = await Assert.ThrowsAsync<CliException>(() => Run("download", "s3://b/k", tmp.Sub("o"), "--streams", "0"));
        Assert.Contains("--streams", e.Message, StringComparison.Ordinal);
    }
}
