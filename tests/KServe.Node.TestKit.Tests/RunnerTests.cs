using System.Diagnostics;
using System.Threading.Channels;

namespace KServe.Node.TestKit.Tests;

/// <summary>The standalone runner prints its URL and kubeconfig and serves kubectl with the project's CRDs.</summary>
public sealed class RunnerTests
{
    private static string RunnerDll()
    {
        // The test binaries live in .../bin/{Configuration}/net10.0/; the runner is built beside them.
        var tfmDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = tfmDir.Parent!.Name;
        var dll = Path.Combine(RepoPaths.Root, "tests", "KServe.Node.TestApiServer", "bin", configuration, tfmDir.Name, "KServe.Node.TestApiServer.dll");
        Assert.True(File.Exists(dll), $"runner not built: {dll}");
        return dll;
    }

    [Fact]
    public async Task Runner_prints_url_and_kubeconfig_and_serves_kubectl()
    {
        var dir = Directory.CreateTempSubdirectory("kserve-node-runner-").FullName;
        var kubeconfig = Path.Combine(dir, "kc");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { RunnerDll(), "--port", "0", "--kubeconfig", kubeconfig })
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        var lines = Channel.CreateUnbounded<string>();
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lines.Writer.TryWrite(e.Data);
            }
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var url = await lines.Reader.ReadAsync(cts.Token);
            Assert.Matches("^URL: http://127\\.0\\.0\\.1:[0-9]+$", url);
            Assert.Equal($"Kubeconfig: {kubeconfig}", await lines.Reader.ReadAsync(cts.Token));
            var crds = await Kubectl.OkAsync(kubeconfig, "get", "crd", "-o", "name");
            Assert.Contains("localmodelcaches.serving.kserve.io", crds, StringComparison.Ordinal);
            Assert.Contains("localmodelnodegroups.serving.kserve.io", crds, StringComparison.Ordinal);
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync(CancellationToken.None);
            Directory.Delete(dir, recursive: true);
        }
    }
}
