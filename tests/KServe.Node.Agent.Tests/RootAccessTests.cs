namespace KServe.Node.Agent.Tests;

/// <summary>A cache root the agent cannot write (a read-only mount; on a node, a hostPath the kubelet made as root).</summary>
public sealed class RootAccessTests
{
    [Fact]
    public async Task An_agent_that_cannot_write_its_root_says_so_in_one_line_and_exits_2()
    {
        using var tmp = new TempDir();
        var root = tmp.Sub("root");
        Directory.CreateDirectory(root);
        await FaultTests.Mount($"-t tmpfs -o ro,size=1m tmpfs {root}");
        try
        {
            using var agent = AgentProcess.Start(["standalone", "--root", root, "--config-dir", tmp.Sub("config"), "--http-port", "0"]);
            var exit = await agent.WaitForExitAsync(TimeSpan.FromSeconds(60));
            var stderr = agent.Output.TrimEnd('\n');

            Assert.Equal(2, exit);
            Assert.DoesNotContain('\n', stderr);
            Assert.StartsWith($"node-agent: cannot write the cache root {root} (", stderr, StringComparison.Ordinal);
            Assert.EndsWith("make it writable by the agent's user (the DaemonSet's prepare-cache init step does so for its hostPath) or choose another --root", stderr, StringComparison.Ordinal);
        }
        finally
        {
            await FaultTests.Mount($"-l {root}", "umount");
        }
    }
}
