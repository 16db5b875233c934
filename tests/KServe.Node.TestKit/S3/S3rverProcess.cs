using System.Diagnostics;
using System.Text.RegularExpressions;

namespace KServe.Node.TestKit.S3;

/// <summary>
/// A real S3-protocol server for loopback tests: runs <c>node tools/node/node_modules/s3rver/bin/s3rver.js</c>
/// on 127.0.0.1 with an ephemeral port and a temporary data folder, waits until it says where it listens,
/// and kills it (and deletes the folder) on dispose. Fails loudly when node or s3rver is missing
/// (run scripts/setup.sh). Credentials are s3rver's fixed <c>S3RVER</c> / <c>S3RVER</c>.
/// </summary>
public sealed partial class S3rverProcess : IAsyncDisposable
{
    public const string AccessKey = "S3RVER";
    public const string SecretKey = "S3RVER";

    private readonly Process _process;
    private readonly string _dataDir;

    private S3rverProcess(Process process, string dataDir, int port)
    {
        _process = process;
        _dataDir = dataDir;
        Port = port;
    }

    public int Port { get; }

    /// <summary>http://127.0.0.1:{port}</summary>
    public string Endpoint => $"http://127.0.0.1:{Port}";

    public static async Task<S3rverProcess> StartAsync(TimeSpan? timeout = null)
    {
        var script = Path.Combine(RepoPaths.Root, "tools", "node", "node_modules", "s3rver", "bin", "s3rver.js");
        if (!File.Exists(script))
        {
            throw new InvalidOperationException($"s3rver is not installed ({script} missing): run scripts/setup.sh");
        }
        var node = FindOnPath("node") ?? FindOnPath("nodejs")
            ?? throw new InvalidOperationException("node is not on PATH: run scripts/setup.sh (installs nodejs)");
        var dataDir = Directory.CreateTempSubdirectory("s3rver-").FullName;
        var psi = new ProcessStartInfo(node)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { script, "-d", dataDir, "-a", "127.0.0.1", "-p", "0", "--silent", "--no-vhost-buckets" })
        {
            psi.ArgumentList.Add(a);
        }
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start s3rver");
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var errors = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && ListeningRegex().Match(line) is { Success: true } m)
            {
                listening.TrySetResult(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                lock (errors)
                {
                    errors.AppendLine(line);
                }
            }
        };
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException($"s3rver exited with {process.ExitCode}: {errors}"));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var port = await listening.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(30));
            return new S3rverProcess(process, dataDir, port);
        }
        catch
        {
            Kill(process);
            process.Dispose();
            TryDelete(dataDir);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill(_process);
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        _process.Dispose();
        TryDelete(_dataDir);
    }

    private static void Kill(Process p)
    {
        try
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, true);
        }
        catch (IOException)
        {
        }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    [GeneratedRegex(@"listening on [^:]+:(\d+)")]
    private static partial Regex ListeningRegex();
}
