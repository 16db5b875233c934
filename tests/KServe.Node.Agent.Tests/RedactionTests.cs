using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Tests.Servers;

namespace KServe.Node.Agent.Tests;

/// <summary>Credentials in a source URI never reach status, logs, manifests or the staging plan.</summary>
public sealed class RedactionTests
{
    [Theory]
    [InlineData("ftp://user:pass@h/x", "ftp://h/x")]
    [InlineData("https://user:pa/ss@host/model.gguf", "https://host/model.gguf")]
    [InlineData("https://user:p@ss@host/m", "https://host/m")]
    [InlineData("https://token@host/m?X-Amz-Signature=abc#frag", "https://host/m")]
    [InlineData("s3://bucket/path@v1/model", "s3://bucket/path@v1/model")]
    [InlineData("hf://owner/repo:main", "hf://owner/repo:main")]
    [InlineData("user:secret@host/no-scheme", "(redacted)")]
    public void SafeUri_cuts_user_info_and_queries(string uri, string expected) => Assert.Equal(expected, ModelFetcher.SafeUri(uri));

    [Fact]
    public async Task A_credential_bearing_URI_appears_nowhere_on_disk_in_status_or_in_the_log()
    {
        await using var server = await RangeHttpServer.StartAsync();
        server.AddFile("m/model.gguf", TestData.Bytes(4 << 20, 95));
        server.BytesPerSecond = 8L << 20;
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, new DownloadOptions { Streams = 2, ChunkSizeBytes = 1 << 20, ReserveBytes = 0 });
        var uri = server.BaseUrl.Replace("http://", "http://agent:hunter2@", StringComparison.Ordinal) + "/m/model.gguf?X-Amz-Signature=s3cr3t";

        h.Engine.SetDesired([EngineHarness.Spec("m", uri)]);
        await server.WhenServedAtLeast(1 << 20).WaitAsync(TimeSpan.FromSeconds(30));
        var plan = await File.ReadAllTextAsync(Directory.GetFiles(h.Store.StagingDir, "plan.json", SearchOption.AllDirectories).Single());
        server.BytesPerSecond = null;
        var v = await h.WaitFor("m", ModelStates.Downloaded);

        var written = string.Join("\n", Directory.GetFiles(tmp.Path, "*.json", SearchOption.AllDirectories).Select(File.ReadAllText));
        foreach (var text in new[] { plan, written, h.Logs.All, v.Uri })
        {
            Assert.DoesNotContain("hunter2", text, StringComparison.Ordinal);
            Assert.DoesNotContain("s3cr3t", text, StringComparison.Ordinal);
        }
        Assert.Contains("\"sourceHash\"", plan, StringComparison.Ordinal);
        Assert.Contains(server.BaseUrl + "/m/model.gguf", written, StringComparison.Ordinal);
    }
}
