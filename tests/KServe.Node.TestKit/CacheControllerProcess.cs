using System.Diagnostics;
using System.Text;
using KServe.Node.TestKit.ApiServer;

namespace KServe.Node.TestKit;

/// <summary>The real cache-controller binary, run as its own process against the test API server (its kubeconfig).</summary>
public sealed class CacheControllerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _kubeconfig;

    private CacheControllerProcess(Process process, string home)
    {
        _process = process;
        _kubeconfig = home;
    }

    /// <summary>The process id (e.g. to read its peak memory from /proc).</summary>
    public int Id => _process.Id;

    /// <summary>Whether the process has ended; then <see cref="ExitCode"/> says how.</summary>
    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

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

    /// <summary>
    /// Starts the cache-controller built in the caller's configuration (Debug or Release), webhooks off, metrics on a
    /// free loopback port. <paramref name="extraArgs"/> are appended to its command line and
    /// <paramref name="environment"/> is added to its environment.
    /// </summary>
    public static CacheControllerProcess Start(TestApiServer server, IEnumerable<string>? extraArgs = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        // Same configuration folder as the calling binary (Debug or Release) under the cache-controller project.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var dll = Path.Combine(RepoPaths.Root, "cache-controller", "bin", configuration, "net10.0", "cache-controller.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"the cache-controller is not built at {dll}", dll);
        }

        // KUBECONFIG points at this server; a home of its own keeps a developer's ~/.kube out of reach.
        var home = Directory.CreateTempSubdirectory("cache-controller-home-").FullName;
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
        start.ArgumentList.Add("--CacheController:MetricsAddr=127.0.0.1:0");
        foreach (var a in extraArgs ?? [])
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["KUBECONFIG"] = kubeconfig;
        start.Environment["HOME"] = home;
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[k] = v;
        }

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
