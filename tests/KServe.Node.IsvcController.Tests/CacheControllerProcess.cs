using System.Diagnostics;
using System.Text;
using KServe.Node.TestKit;
using KServe.Node.TestKit.ApiServer;

namespace KServe.Node.IsvcController.Tests;

/// <summary>The real cache-controller binary, run as its own process against the test API server (its kubeconfig).</summary>
internal sealed class CacheControllerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _kubeconfig;

    private CacheControllerProcess(Process process, string home)
    {
        _process = process;
        _kubeconfig = home;
    }

    /// <summary>What the process printed so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static CacheControllerProcess Start(TestApiServer server)
    {
        // Same configuration folder as this test binary (Debug or Release) under the cache-controller project.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var dll = Path.Combine(RepoPaths.Root, "cache-controller", "bin", configuration, "net10.0", "cache-controller.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"the cache-controller is not built at {dll}", dll);
        }

        // The client library reads ~/.kube/config (not KUBECONFIG): give the process a home of its own.
        var home = Directory.CreateTempSubdirectory("isvc-tests-home-").FullName;
        Directory.CreateDirectory(Path.Combine(home, ".kube"));
        var kubeconfig = Path.Combine(home, ".kube", "config");
        server.WriteKubeconfig(kubeconfig);
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("--CacheController:EnableWebhooks=false");
        start.ArgumentList.Add("--CacheController:MetricsAddress=127.0.0.1");
        start.ArgumentList.Add("--CacheController:MetricsPort=0");
        start.Environment["KUBECONFIG"] = kubeconfig;
        start.Environment["HOME"] = home;
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        var cc = new CacheControllerProcess(process, home);
        process.OutputDataReceived += (_, e) => cc.Append(e.Data);
        process.ErrorDataReceived += (_, e) => cc.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return cc;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        _process.Dispose();
        Directory.Delete(_kubeconfig, recursive: true);
    }
}
