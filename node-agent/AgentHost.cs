using System.Net;
using System.Text.Json;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Standalone;
using KServe.Node.Agent.Store;
using KServe.Node.Hosting;
using KServe.Node.Hosting.Cli;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KServe.Node.Agent;

/// <summary>Builds the long-running agent (standalone or Kubernetes mode): engine, HTTP status, health and metrics.</summary>
internal static class AgentHost
{
    public static WebApplication BuildStandalone(CliResult cli)
    {
        var builder = CreateBuilder(cli, "127.0.0.1", out _);
        var standalone = builder.Configuration.GetSection(StandaloneOptions.Section).Get<StandaloneOptions>() ?? new StandaloneOptions();
        builder.Services.AddSingleton(new StandaloneSettings(Path.GetFullPath(standalone.ConfigDir), standalone.StorageLimitBytes));
        builder.Services.AddSingleton<StandaloneService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<StandaloneService>());
        builder.Services.AddHealthChecks().AddCheck("standalone-config", () => HealthCheckResult.Healthy(), tags: [ServiceDefaults.ReadyTag]);
        var app = builder.Build();
        MapEndpoints(app, "standalone", () => app.Services.GetRequiredService<StandaloneService>().ConfigErrors);
        return app;
    }

    /// <summary>The host shared by both long-running modes; <paramref name="defaultAddress"/> applies when --address is not set.</summary>
    internal static WebApplicationBuilder CreateBuilder(CliResult cli, string defaultAddress, out AgentOptions agent)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddCommandLine(cli);
        builder.AddServiceDefaults("node-agent");
        agent = builder.Configuration.GetSection(AgentOptions.Section).Get<AgentOptions>() ?? new AgentOptions();
        var address = agent.Address is { Length: > 0 } a ? a : defaultAddress;
        if (!IPAddress.TryParse(address, out var ip))
        {
            throw new CliException($"--address must be an IP address, got '{address}'");
        }
        Daemon.EnsurePortFree("--http-port", new IPEndPoint(ip, agent.HttpPort));
        var root = Path.GetFullPath(agent.Root);
        EnsureWritable(root);
        var port = agent.HttpPort;
        builder.WebHost.UseKestrel(o => o.Listen(ip, port));
        builder.Services.AddValidatedOptions<AgentOptions>(builder.Configuration, AgentOptions.Section);
        builder.Services.AddValidatedOptions<DownloadOptions>(builder.Configuration, DownloadOptions.Section);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(_ => SourceFactory.CreateHttpClient());
        // One agent per root: taken here, before anything reads or deletes under it (released when the app is disposed).
        var rootLock = RootLock.Acquire(root);
        builder.Services.AddSingleton(_ => new ModelStore(root, rootLock: rootLock));
        builder.Services.AddSingleton(sp => new ModelFetcher(sp.GetRequiredService<IOptions<DownloadOptions>>().Value,
            sp.GetRequiredService<HttpClient>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ModelFetcher>>()));
        builder.Services.AddSingleton(sp => new CacheEngine(sp.GetRequiredService<ModelStore>(), sp.GetRequiredService<ModelFetcher>(),
            sp.GetRequiredService<IOptions<DownloadOptions>>().Value, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<CacheEngine>>()));
        builder.Services.AddHostedService<EngineService>();
        builder.Services.AddHealthChecks().AddCheck<EngineHealthCheck>("engine", tags: [ServiceDefaults.ReadyTag]);
        return builder;
    }

    /// <summary>
    /// Fails at start with one line naming the root when the agent cannot write it (a hostPath the kubelet created
    /// as root, a read-only mount), instead of an access error from deep inside the first download.
    /// </summary>
    private static void EnsureWritable(string root)
    {
        var probe = Path.Combine(root, $".write-test.{Environment.ProcessId}");
        try
        {
            Directory.CreateDirectory(root);
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var why = e is UnauthorizedAccessException ? "permission denied" : e.Message.TrimEnd('.');
            throw new StartupException($"cannot write the cache root {root} ({why}) as uid {Uid()}: "
                + "make it writable by the agent's user (the DaemonSet's prepare-cache init step does so for its hostPath) or choose another --root");
        }
    }

    private static string Uid() => File.Exists("/proc/self/status")
        ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(1) ?? "?"
        : "?";

    internal static void MapEndpoints(WebApplication app, string mode, Func<IReadOnlyList<string>> configErrors)
    {
        app.MapServiceDefaults();
        app.MapGet("/status", (HttpContext ctx) =>
        {
            var engine = ctx.RequestServices.GetRequiredService<CacheEngine>();
            return Results.Json(BuildStatus(engine, mode, configErrors()), StatusJsonContext.Default.AgentStatusDto);
        });
    }

    internal static AgentStatusDto BuildStatus(CacheEngine engine, string mode, IReadOnlyList<string> configErrors)
    {
        var store = engine.Store;
        var dto = new AgentStatusDto { Mode = mode, Root = store.Root, ConfigErrors = [.. configErrors] };
        try
        {
            var drive = new DriveInfo(store.Root);
            dto.Storage = new StorageDto
            {
                UsedBytes = store.UsedBytes(),
                FreeBytes = drive.AvailableFreeSpace,
                CapacityBytes = engine.StorageLimitBytes ?? drive.TotalSize,
                LimitBytes = engine.StorageLimitBytes,
            };
        }
        catch (IOException)
        {
        }
        foreach (var v in engine.Snapshot())
        {
            dto.Models.Add(new ModelDto
            {
                Name = v.StatusKey,
                Uri = v.Uri,
                StorageKey = v.StorageKey,
                State = v.State,
                BytesDone = v.BytesDone,
                BytesTotal = v.BytesTotal,
                Reason = v.Reason,
                Message = v.Message,
                UpdatedAt = v.UpdatedAt,
                Path = v.Path,
                Files = v.State == ModelStates.Downloaded ? store.GetManifest(v.StorageKey)?.Files.Select(f => f.Path).ToList() : null,
            });
        }
        return dto;
    }
}

internal sealed class EngineHealthCheck(CacheEngine engine) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(engine.Started ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("engine not started"));
}

/// <summary><c>list</c>: cached models with size, state and progress, from a running agent or from disk.</summary>
internal static class ListCommand
{
    public static async Task<int> RunAsync(CliResult cl, TextWriter stdout, CancellationToken ct)
    {
        AgentStatusDto status;
        if (cl.Get("url") is { } url)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            status = JsonSerializer.Deserialize(await http.GetStringAsync(url.TrimEnd('/') + "/status", ct).ConfigureAwait(false), StatusJsonContext.Default.AgentStatusDto)
                ?? throw new StartupException($"{url}/status returned no status");
        }
        else
        {
            var root = cl.Get("root") ?? throw new CliException("list needs --root DIR or --url URL");
            if (!Directory.Exists(root))
            {
                throw new CliException($"--root {root} does not exist");
            }
            var store = new ModelStore(root);
            status = new AgentStatusDto { Mode = "disk", Root = store.Root };
            foreach (var m in store.Manifests().OrderBy(m => m.SourceUri, StringComparer.Ordinal))
            {
                status.Models.Add(new ModelDto
                {
                    Name = m.StorageKey, Uri = m.SourceUri, StorageKey = m.StorageKey, State = ModelStates.Downloaded,
                    BytesDone = m.TotalBytes, BytesTotal = m.TotalBytes, UpdatedAt = m.CompletedAt, Path = store.ModelPath(m.StorageKey),
                });
            }
            foreach (var d in Directory.GetDirectories(store.StagingDir))
            {
                var key = Path.GetFileName(d).Split('.')[0];
                var plan = new StagingArea(d, store.Io).LoadPlan();
                status.Models.Add(new ModelDto
                {
                    Name = key, Uri = plan is null ? "" : ModelFetcher.SafeUri(plan.SourceUri), StorageKey = key, State = "Partial",
                    BytesDone = ModelStore.FolderBytes(d), BytesTotal = plan?.Files.Sum(f => f.Size ?? 0), Path = d,
                });
            }
        }
        if (cl.Switch("json"))
        {
            await stdout.WriteLineAsync(JsonSerializer.Serialize(status, StatusJsonContext.Default.AgentStatusDto)).ConfigureAwait(false);
            return 0;
        }
        await stdout.WriteLineAsync($"{"NAME",-28} {"STATE",-22} {"SIZE",10} {"PROGRESS",8}  URI").ConfigureAwait(false);
        foreach (var m in status.Models)
        {
            var size = m.BytesTotal is { } t ? ModelFetcher.Bytes(t) : "?";
            var pct = m.BytesTotal is > 0 ? $"{100.0 * m.BytesDone / m.BytesTotal.Value:0}%" : m.State == ModelStates.Downloaded ? "100%" : "-";
            await stdout.WriteLineAsync($"{Trunc(m.Name, 28),-28} {m.State,-22} {size,10} {pct,8}  {m.Uri}").ConfigureAwait(false);
            if (m.Message is { } msg)
            {
                await stdout.WriteLineAsync($"  {m.Reason}: {msg}").ConfigureAwait(false);
            }
        }
        if (status.Storage.CapacityBytes > 0)
        {
            await stdout.WriteLineAsync($"storage: {ModelFetcher.Bytes(status.Storage.UsedBytes)} used, {ModelFetcher.Bytes(status.Storage.FreeBytes)} free, capacity {ModelFetcher.Bytes(status.Storage.CapacityBytes)}").ConfigureAwait(false);
        }
        foreach (var e in status.ConfigErrors)
        {
            await stdout.WriteLineAsync($"config error: {e}").ConfigureAwait(false);
        }
        return 0;
    }

    private static string Trunc(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
