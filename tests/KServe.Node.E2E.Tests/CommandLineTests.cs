using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using KServe.Node.TestKit;

namespace KServe.Node.E2E.Tests;

/// <summary>
/// The four daemons' command lines, run as the built programs a user starts: help, bad flags and values, a missing
/// cluster and a port in use each give the exit code and the one line the shared command-line idiom promises.
/// </summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("cli-home-").FullName;

    public static TheoryData<string> Daemons => new() { "node-agent", "cache-controller", "isvc-controller", "llm-server" };

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Theory]
    [MemberData(nameof(Daemons))]
    public async Task Help_prints_every_flag_with_its_default_and_exits_0_without_touching_the_cluster(string daemon)
    {
        foreach (var args in new[] { ["--help"], new[] { "-h" }, ["help"] })
        {
            var r = await RunAsync(daemon, args);
            Assert.True(r.Code == 0, $"{daemon} {args[0]}: exit {r.Code}\n{r.Err}");
            Assert.Equal("", r.Err);
            Assert.StartsWith($"usage: {daemon}", r.Out, StringComparison.Ordinal);
        }
        var help = (await RunAsync(daemon, ["--help"])).Out;
        var expected = daemon switch
        {
            "node-agent" => new[] { "--root DIR", "default /mnt/models", "--http-port N", "default 8090", "env NODE_AGENT_HTTP_PORT, key Agent:HttpPort", "standalone", "download" },
            "cache-controller" => ["--leader-elect", "--job-namespace VALUE", "default kserve-localmodel-jobs", "--webhook-port N", "default 9443", "--metrics-addr [HOST]:PORT", "default :8081", "env CACHE_CONTROLLER_LEADER_ELECT"],
            "isvc-controller" => ["--all", "--leader-elect", "--metrics-addr [HOST]:PORT", "default :8082", "--webhook-port N", "default 9444", "--kubeconfig FILE"],
            _ => ["-m, --model PATH", "-c, --context-size, --ctx-size N", "default 4096", "--no-embeddings", "--port N", "default 8080", "--api-keys, --api-key KEY", "repeatable", "env LLM_SERVER_CONTEXT_SIZE, key Engine:ContextSize"],
        };
        foreach (var e in expected)
        {
            Assert.Contains(e, help, StringComparison.Ordinal);
        }
        // No unreachable cluster was waited for and nothing was written: HOME stays empty.
        Assert.Empty(Directory.GetFileSystemEntries(_home));
    }

    [Fact]
    public async Task Node_agent_verbs_have_their_own_help_with_the_right_flag_names()
    {
        var r = await RunAsync("node-agent", ["standalone", "--help"]);
        Assert.Equal(0, r.Code);
        Assert.StartsWith("usage: node-agent standalone --root DIR --config-dir DIR [flags]", r.Out, StringComparison.Ordinal);
        Assert.Contains("--http-port N", r.Out, StringComparison.Ordinal);
        Assert.Contains("--storage-limit-bytes, --storage-limit SIZE", r.Out, StringComparison.Ordinal);
        var d = await RunAsync("node-agent", ["download", "--help"]);
        Assert.StartsWith("usage: node-agent download URI DEST [flags]", d.Out, StringComparison.Ordinal);
        Assert.Contains("--allow GLOBS", d.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("--max-concurrent-models", d.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("node-agent", "node-agent: unknown flag --bogus for 'node-agent' (see 'node-agent --help')")]
    [InlineData("cache-controller", "cache-controller: unknown flag --bogus for 'cache-controller' (see 'cache-controller --help')")]
    [InlineData("isvc-controller", "isvc-controller: unknown flag --bogus for 'isvc-controller' (see 'isvc-controller --help')")]
    [InlineData("llm-server", "llm-server: unknown flag --bogus for 'llm-server' (see 'llm-server --help')")]
    public async Task A_bad_flag_is_one_line_and_exit_2(string daemon, string line)
    {
        var r = await RunAsync(daemon, ["--bogus", "1"]);
        AssertOneLine(r, 2, line);
    }

    [Theory]
    [InlineData("node-agent", new[] { "standalone", "--root", "r", "--config-dir", "c", "--http-port", "http" }, "node-agent: --http-port must be an integer, got 'http'")]
    [InlineData("node-agent", new[] { "download", "s3://b/k", "out", "--streams", "0" }, "node-agent: --streams must be from 1 to 128, got '0'")]
    [InlineData("node-agent", new[] { "standalone", "--root", "r", "--config-dir", "c", "--storage-limit", "lots" }, "node-agent: --storage-limit must be a size such as 64Mi, 500Gi or a number of bytes, got 'lots'")]
    [InlineData("cache-controller", new[] { "--leader-elect=perhaps" }, "cache-controller: --leader-elect must be true or false, got 'perhaps'")]
    [InlineData("cache-controller", new[] { "--metrics-addr", "8081" }, "cache-controller: --metrics-addr must be [HOST]:PORT such as :8081 or 127.0.0.1:8081, got '8081'")]
    [InlineData("isvc-controller", new[] { "--webhook-port", "99999" }, "isvc-controller: --webhook-port must be from 0 to 65535, got '99999'")]
    [InlineData("llm-server", new[] { "--flash-attn", "sometimes" }, "llm-server: --flash-attn must be one of disabled, enabled, auto, got 'sometimes'")]
    [InlineData("llm-server", new[] { "--model" }, "llm-server: --model needs a value (PATH: GGUF file, or a folder holding one)")]
    public async Task A_bad_value_is_one_line_naming_the_flag_and_exit_2(string daemon, string[] args, string line)
    {
        var r = await RunAsync(daemon, args);
        AssertOneLine(r, 2, line);
    }

    [Fact]
    public async Task A_bad_environment_variable_is_named_like_a_flag()
    {
        var r = await RunAsync("cache-controller", [], new() { ["CACHE_CONTROLLER_WORKERS"] = "many" });
        AssertOneLine(r, 2, "cache-controller: CACHE_CONTROLLER_WORKERS must be an integer, got 'many'");
    }

    [Theory]
    [InlineData("node-agent")]
    [InlineData("cache-controller")]
    [InlineData("isvc-controller")]
    public async Task No_cluster_is_one_line_naming_the_fix_and_exit_2(string daemon)
    {
        // The ports are free (0 = any) so that the kubeconfig is what fails.
        string[] ports = daemon switch
        {
            "node-agent" => ["--http-port", "0", "--node-name", "n1"],
            _ => ["--metrics-addr", "127.0.0.1:0", "--webhook-port", "0"],
        };
        var r = await RunAsync(daemon, ports);
        AssertOneLine(r, 2, $"{daemon}: no cluster to talk to: not running in a pod and no kubeconfig at {_home}/.kube/config (pass --kubeconfig FILE or set KUBECONFIG)");

        var missing = Path.Combine(_home, "nope.yaml");
        r = await RunAsync(daemon, [.. ports, "--kubeconfig", missing]);
        AssertOneLine(r, 2, $"{daemon}: kubeconfig {missing} does not exist (check --kubeconfig or KUBECONFIG)");

        var broken = Path.Combine(_home, "broken.yaml");
        await File.WriteAllTextAsync(broken, "apiVersion: v1\nkind: Config\nclusters: [\n");
        r = await RunAsync(daemon, [.. ports, "--kubeconfig", broken]);
        Assert.Equal(2, r.Code);
        Assert.StartsWith($"{daemon}: the kubeconfig {broken} is not usable: ", OneLine(r), StringComparison.Ordinal);

        // A kubeconfig whose server does not answer: named at start, not a stack trace from the first watch.
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var deadPort = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var dead = Path.Combine(_home, "dead.yaml");
        await File.WriteAllTextAsync(dead, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: c
              cluster:
                server: http://127.0.0.1:{deadPort}
            users:
            - name: u
              user:
                token: t
            contexts:
            - name: x
              context:
                cluster: c
                user: u
            current-context: x
            """);
        r = await RunAsync(daemon, [.. ports, "--kubeconfig", dead]);
        Assert.Equal(2, r.Code);
        Assert.StartsWith($"{daemon}: cannot reach the Kubernetes API server at http://127.0.0.1:{deadPort}/: ", OneLine(r), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("node-agent", "--http-port")]
    [InlineData("cache-controller", "--metrics-addr")]
    [InlineData("cache-controller", "--webhook-port")]
    [InlineData("isvc-controller", "--metrics-addr")]
    [InlineData("llm-server", "--port")]
    public async Task A_port_in_use_is_one_line_naming_the_flag_and_exit_2(string daemon, string flag)
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var model = Path.Combine(_home, "m.gguf");
        await File.WriteAllBytesAsync(model, [(byte)'G', (byte)'G', (byte)'U', (byte)'F']);
        string[] args = (daemon, flag) switch
        {
            ("node-agent", _) => ["standalone", "--root", Path.Combine(_home, "root"), "--config-dir", Path.Combine(_home, "config"), "--http-port", $"{port}"],
            ("cache-controller", "--webhook-port") => ["--metrics-addr", "127.0.0.1:0", "--webhook-address", "127.0.0.1", "--webhook-port", $"{port}"],
            (_, "--metrics-addr") => ["--metrics-addr", $"127.0.0.1:{port}"],
            _ => ["--model", model, "--host", "127.0.0.1", "--port", $"{port}"],
        };
        var r = await RunAsync(daemon, args);
        AssertOneLine(r, 2, $"{daemon}: port {port} on 127.0.0.1 is already in use ({flag}): stop the process that holds it or choose another {flag}");
    }

    [Fact]
    public async Task The_controllers_default_ports_do_not_collide()
    {
        var cache = (await RunAsync("cache-controller", ["--help"])).Out;
        var isvc = (await RunAsync("isvc-controller", ["--help"])).Out;
        Assert.Contains("default :8081", cache, StringComparison.Ordinal);
        Assert.Contains("default :8082", isvc, StringComparison.Ordinal);
        Assert.Contains("default 9443", cache, StringComparison.Ordinal);
        Assert.Contains("default 9444", isvc, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreadable_model_path_is_one_line_and_exit_2()
    {
        var missing = Path.Combine(_home, "missing.gguf");
        AssertOneLine(await RunAsync("llm-server", ["--model", missing, "--port", "0"]), 2, $"llm-server: --model '{missing}' is neither a file nor a folder.");
        var empty = Directory.CreateDirectory(Path.Combine(_home, "empty")).FullName;
        AssertOneLine(await RunAsync("llm-server", ["--model", empty, "--port", "0"]), 2, $"llm-server: No .gguf file in '{empty}'.");
        AssertOneLine(await RunAsync("llm-server", ["--port", "0"]), 2, "llm-server: --model is required: a GGUF file or a folder holding one (see --help)");
    }

    private static void AssertOneLine((int Code, string Out, string Err) r, int code, string line)
    {
        Assert.True(r.Code == code, $"exit {r.Code}, expected {code}\nstdout: {r.Out}\nstderr: {r.Err}");
        Assert.Equal(line, OneLine(r));
    }

    private static string OneLine((int Code, string Out, string Err) r)
    {
        var lines = r.Err.TrimEnd('\n').Split('\n');
        Assert.True(lines.Length == 1, "expected one line on stderr, got:\n" + r.Err);
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        return lines[0];
    }

    private async Task<(int Code, string Out, string Err)> RunAsync(string daemon, string[] args, Dictionary<string, string>? env = null)
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var project = daemon == "llm-server" ? Path.Combine("llm-server", "KServe.Node.LlmServer") : daemon;
        var dll = Path.Combine(RepoPaths.Root, project, "bin", configuration, "net10.0", daemon + ".dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _home };
        psi.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        // An empty home and no cluster in reach: what a new user's machine looks like.
        psi.Environment["HOME"] = _home;
        psi.Environment.Remove("KUBECONFIG");
        psi.Environment.Remove("KUBERNETES_SERVICE_HOST");
        psi.Environment.Remove("NODE_NAME");
        psi.Environment["DOTNET_CLI_HOME"] = Path.Combine(Path.GetTempPath(), "cli-tests-dotnet");
        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (k, v) in env ?? [])
        {
            psi.Environment[k] = v;
        }
        using var p = Process.Start(psi)!;
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
            throw new TimeoutException($"{daemon} {string.Join(' ', args)} did not exit; stderr: {await stderr}");
        }
        return (p.ExitCode, await stdout, await stderr);
    }
}
