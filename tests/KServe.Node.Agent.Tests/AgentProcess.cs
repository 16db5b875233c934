using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using KServe.Node.Agent.Standalone;

namespace KServe.Node.Agent.Tests;

/// <summary>
/// The node-agent binary as its own process: what it prints is kept line by line and can be awaited, and it
/// can be stopped the way a kubelet or systemd stops it (SIGTERM) or killed outright (SIGKILL).
/// </summary>
internal sealed class AgentProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Signal)> _waiters = [];

    private AgentProcess(Process process, int httpPort)
    {
        _process = process;
        HttpPort = httpPort;
    }

    public int HttpPort { get; }

    public int Pid => _process.Id;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join("\n", _lines);
            }
        }
    }

    /// <summary>Starts <c>node-agent {args}</c>; <c>{port}</c> in an argument is replaced by a free loopback port.</summary>
    public static AgentProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var port = FreePort();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "node-agent.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        }
        psi.Environment["DOTNET_ENVIRONMENT"] = "Production";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start node-agent");
        var agent = new AgentProcess(process, port);
        process.OutputDataReceived += (_, e) => agent.Append(e.Data);
        process.ErrorDataReceived += (_, e) => agent.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return agent;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_lines)
        {
            _lines.Add(line);
            foreach (var w in _waiters.Where(w => w.Match(line)).ToList())
            {
                w.Signal.TrySetResult(line);
                _waiters.Remove(w);
            }
        }
    }

    /// <summary>The first line (already printed or still to come) that contains <paramref name="text"/>.</summary>
    public async Task<string> WaitForLine(string text, TimeSpan? timeout = null)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lines)
        {
            if (_lines.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) is { } seen)
            {
                return seen;
            }
            _waiters.Add((l => l.Contains(text, StringComparison.Ordinal), tcs));
        }
        var exited = _process.WaitForExitAsync();
        var done = await Task.WhenAny(tcs.Task, exited).WaitAsync(timeout ?? TimeSpan.FromSeconds(60));
        if (done != tcs.Task)
        {
            await Task.Delay(100); // let the last lines arrive for the message
            throw new InvalidOperationException($"node-agent exited ({_process.ExitCode}) before printing '{text}':\n{Output}");
        }
        return await tcs.Task;
    }

    /// <summary>The standalone status view (<c>GET /status</c>).</summary>
    public async Task<AgentStatusDto> StatusAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var body = await http.GetStringAsync($"http://127.0.0.1:{HttpPort}/status");
        return JsonSerializer.Deserialize(body, StatusJsonContext.Default.AgentStatusDto)!;
    }

    /// <summary>SIGTERM (a graceful stop), then waits for the exit.</summary>
    public async Task TerminateAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>SIGKILL: no cleanup runs.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        _process.WaitForExit(); // drains the output readers
        return _process.ExitCode;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }
        _process.Dispose();
    }
}
