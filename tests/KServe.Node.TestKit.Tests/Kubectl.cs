using System.Diagnostics;
using System.Text;

namespace KServe.Node.TestKit.Tests;

/// <summary>Runs the preinstalled kubectl against a kubeconfig. A missing kubectl fails the test.</summary>
internal static class Kubectl
{
    public static string Path
    {
        get
        {
            foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = System.IO.Path.Combine(dir, "kubectl");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
            Assert.Fail("kubectl is not on PATH; these tests need the preinstalled kubectl (1.32)");
            return "";
        }
    }

    public static ProcessStartInfo StartInfo(string kubeconfig, params string[] args)
    {
        var psi = new ProcessStartInfo(Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--kubeconfig");
        psi.ArgumentList.Add(kubeconfig);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        // Keep kubectl's discovery cache inside the test's temp dir.
        psi.Environment["HOME"] = System.IO.Path.GetDirectoryName(kubeconfig)!;
        psi.Environment["KUBECACHEDIR"] = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(kubeconfig)!, "cache");
        return psi;
    }

    public static async Task<(int Exit, string Out, string Err)> RunAsync(string kubeconfig, string? stdin, params string[] args)
    {
        using var p = Process.Start(StartInfo(kubeconfig, args))!;
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
        }
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"kubectl {string.Join(' ', args)} did not finish: {await stderr}");
        }
        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs kubectl and asserts success, returning stdout.</summary>
    public static async Task<string> OkAsync(string kubeconfig, params string[] args)
    {
        var (exit, stdout, stderr) = await RunAsync(kubeconfig, null, args);
        Assert.True(exit == 0, $"kubectl {string.Join(' ', args)} exited {exit}: {stderr}{stdout}");
        return stdout;
    }

    public static string Join(params string[] lines) => string.Join('\n', lines) + "\n";

    public static string Normalize(string s) => new StringBuilder(s).Replace("\r", "").ToString();
}
