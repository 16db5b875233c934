using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace KServe.Node.Hosting.Cli;

/// <summary>
/// The one way every daemon starts: parse the command line, answer <c>--help</c> without touching anything, run
/// the command, and turn every problem an operator can fix into one line on stderr with exit code 2 (a bad flag
/// or value, invalid settings, no cluster, a port in use, a missing file). Anything else is one line and exit 1.
/// </summary>
public static class Daemon
{
    public const int UsageExitCode = 2;

    public static async Task<int> RunAsync(CliApp cli, string[] args, Func<CliResult, CancellationToken, Task<int>> run,
        TextWriter? stdout = null, TextWriter? stderr = null)
    {
        ArgumentNullException.ThrowIfNull(cli);
        ArgumentNullException.ThrowIfNull(run);
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        using var cts = new CancellationTokenSource();
        // One-shot commands stop on SIGINT/SIGTERM through this token; a host handles the signals itself as well.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cts.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        try
        {
            var parsed = cli.Parse(args);
            if (parsed.HelpRequested)
            {
                await stdout.WriteAsync(parsed.Usage).ConfigureAwait(false);
                return 0;
            }
            return await run(parsed, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            await stderr.WriteLineAsync($"{cli.Program}: cancelled").ConfigureAwait(false);
            return 130;
        }
        catch (Exception e) when (Describe(e) is { } message)
        {
            await stderr.WriteLineAsync($"{cli.Program}: {message}").ConfigureAwait(false);
            return UsageExitCode;
        }
        catch (Exception e)
        {
            await stderr.WriteLineAsync($"{cli.Program}: unexpected error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}").ConfigureAwait(false);
            return 1;
        }
    }

    /// <summary>Runs a web host until it is stopped (SIGTERM, SIGINT); start-up errors reach <see cref="RunAsync"/>.</summary>
    public static async Task<int> RunHostAsync(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        await using (app.ConfigureAwait(false))
        {
            await app.RunAsync().ConfigureAwait(false);
        }
        return 0;
    }

    /// <summary>Adds the parsed flags and environment to the host's configuration (above appsettings.json and plain environment).</summary>
    public static IConfigurationBuilder AddCommandLine(this IConfigurationBuilder configuration, CliResult cli)
    {
        ArgumentNullException.ThrowIfNull(cli);
        return configuration.AddInMemoryCollection(cli.Configuration);
    }

    /// <summary>
    /// Fails with one line naming <paramref name="flag"/> when <paramref name="port"/> on <paramref name="address"/>
    /// is taken, before anything else starts (Kestrel would report it only after the host began starting).
    /// </summary>
    public static void EnsurePortFree(string flag, string address, int port)
    {
        // A host name: Kestrel resolves it and reports a taken port itself.
        if (IPAddress.TryParse(address, out var ip))
        {
            EnsurePortFree(flag, new IPEndPoint(ip, port));
        }
    }

    /// <inheritdoc cref="EnsurePortFree(string, string, int)"/>
    public static void EnsurePortFree(string flag, IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (endpoint.Port == 0)
        {
            return;
        }
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endpoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new StartupException($"port {endpoint.Port} on {endpoint.Address} is already in use ({flag}): stop the process that holds it or choose another {flag}");
        }
        catch (SocketException e)
        {
            throw new StartupException($"cannot listen on {endpoint} ({flag}): {e.Message}");
        }
    }

    /// <summary>
    /// The plain-HTTP listeners of a controller, from KServe's <c>--metrics-addr</c> and optional
    /// <c>--health-probe-addr</c>: parsed and checked free, metrics first.
    /// </summary>
    public static IReadOnlyList<IPEndPoint> ControllerListeners(string metricsAddr, string healthProbeAddr)
    {
        ArgumentNullException.ThrowIfNull(healthProbeAddr);
        var listeners = new List<(string Flag, IPEndPoint Endpoint)> { ("--metrics-addr", ParseEndpoint("--metrics-addr", metricsAddr)) };
        if (healthProbeAddr.Length > 0)
        {
            listeners.Add(("--health-probe-addr", ParseEndpoint("--health-probe-addr", healthProbeAddr)));
        }
        foreach (var (flag, endpoint) in listeners)
        {
            EnsurePortFree(flag, endpoint);
        }
        return [.. listeners.Select(l => l.Endpoint)];
    }

    /// <summary>
    /// Reads a listen address as KServe's controllers take it: <c>:8081</c> (every interface), <c>127.0.0.1:0</c>,
    /// <c>[::1]:8081</c>; throws naming <paramref name="flag"/>.
    /// </summary>
    public static IPEndPoint ParseEndpoint(string flag, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var colon = value.LastIndexOf(':');
        var host = colon >= 0 ? value[..colon].Trim('[', ']') : "";
        if (colon < 0 || !int.TryParse(value[(colon + 1)..], out var port) || port is < 0 or > 65535)
        {
            throw new CliException($"{flag} must be [HOST]:PORT such as :8081 or 127.0.0.1:8081, got '{value}'");
        }
        if (host.Length == 0)
        {
            return new IPEndPoint(IPAddress.Any, port);
        }
        if (host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }
        return IPAddress.TryParse(host, out var ip)
            ? new IPEndPoint(ip, port)
            : throw new CliException($"{flag} must name an IP address (or localhost), got '{value}'");
    }

    private static string? Describe(Exception e) => e switch
    {
        CliException or StartupException => e.Message,
        OptionsValidationException o => "invalid settings: " + string.Join("; ", o.Failures),
        IOException { InnerException: AddressInUseException } => $"{e.Message.TrimEnd('.')}: stop the process that holds the port or choose another",
        AggregateException { InnerExceptions: [var inner] } => Describe(inner),
        _ => null,
    };
}
