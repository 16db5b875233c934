using System.Globalization;
using KServe.Node.Agent.Tests.Servers;

namespace KServe.Node.Agent.Tests;

/// <summary>A model of many files, fetched by the node-agent binary with its memory and descriptors watched from outside.</summary>
public sealed class ScaleTests
{
    [Fact]
    public async Task A_listing_of_5000_checksummed_files_stays_within_400_MiB_and_256_descriptors()
    {
        const int Files = 5000, Size = 8 << 10;
        await using var server = await RangeHttpServer.StartAsync();
        var names = new List<string>();
        for (var i = 0; i < Files; i++)
        {
            var name = $"shard-{i:D5}.bin";
            names.Add(name);
            // Every file carries a Repr-Digest, so every one is hashed.
            server.AddFile("repo/" + name, TestData.Bytes(Size, 1000 + i));
        }
        server.AddListing("repo/", [.. names]);
        using var tmp = new TempDir();
        var dest = tmp.Sub("model");

        using var agent = AgentProcess.Start(["download", server.BaseUrl + "/repo/", dest, "--streams", "8"]);
        var (peakRss, peakFds) = await Watch(agent.Pid);
        var exit = await agent.WaitForExitAsync(TimeSpan.FromSeconds(300));

        Assert.True(exit == 0, agent.Output);
        Assert.Equal(Files, Directory.GetFiles(dest).Length);
        Assert.Equal(TestData.Sha256(TestData.Bytes(Size, 1000 + 4321)), TestData.Sha256File(Path.Combine(dest, "shard-04321.bin")));
        TestContext.Current.TestOutputHelper?.WriteLine($"{Files} files: peak RSS {peakRss >> 20} MiB, peak open descriptors {peakFds}");
        Assert.True(peakRss < 400L << 20, $"peak RSS {peakRss >> 20} MiB");
        Assert.True(peakFds < 256, $"peak open descriptors {peakFds}");
    }

    /// <summary>Samples /proc until the process is gone: its peak resident set (VmHWM) and most descriptors seen open.</summary>
    private static async Task<(long PeakRss, int PeakFds)> Watch(int pid)
    {
        long rss = 0;
        var fds = 0;
        while (true)
        {
            try
            {
                var status = await File.ReadAllLinesAsync($"/proc/{pid}/status");
                if (status.FirstOrDefault(l => l.StartsWith("State:", StringComparison.Ordinal)) is { } state && state.Contains('Z', StringComparison.Ordinal))
                {
                    return (rss, fds);
                }
                if (status.FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal)) is { } hwm)
                {
                    rss = Math.Max(rss, long.Parse(hwm.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024);
                }
                fds = Math.Max(fds, Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return (rss, fds);
            }
            await Task.Delay(10);
        }
    }
}
