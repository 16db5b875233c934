using System.Net;
using System.Text.Json;
using KServe.Node.Agent.Cli;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Standalone;
using KServe.Node.Agent.Store;
using KServe.Node.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KServe.Node.Agent;

/// <summary>Builds the long-running agent (standalone or Kubernetes mode): engine, HTTP status, health and metrics.</summary>
internal static class AgentHost
{
    public static WebApplication BuildStandalone(CommandLine cl)
    {
        cl.OnlyAllow("config-dir", "root", "http-port", "address", "storage-limit");
        var configDir = Path.GetFullPath(cl.Require("config-dir"));
        var root = Path.GetFullPath(cl.Require("root"));
        var builder = CreateBuilder(cl, root);
        builder.Services.AddSingleton(new StandaloneSettings(configDir, cl.GetSize("storage-limit")));
        builder.Services.AddSingleton<StandaloneService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<StandaloneService>());
        builder.Services.AddHealthChecks().AddCheck("standalone-config", () => HealthCheckResult.Healthy(), tags: [ServiceDefaults.ReadyTag]);
        var app = builder.Build();
        MapEndpoints(app, "standalone", () => app.Services.GetRequiredService<StandaloneService>().ConfigErrors);
        return app;
    }

    internal static WebApplicationBuilder CreateBuilder(CommandLine cl, string root)
    {
        var builder = WebApplication.CreateBuilder([.. cl.PassThrough]);
        builder.AddServiceDefaults("node-agent");
        var port = cl.GetInt("http-port", 0, 65535) ?? 8080;
        var address = cl.Get("address") ?? (cl.Verb == "standalone" ? "127.0.0.1" : "0.0.0.0");
        if (!IPAddress.TryParse(address, out var ip))
        {
            throw new UsageException($"--address must be an IP address, got '{address}'");
        }
        builder.WebHost.UseKestrel(o => o.Listen(ip, port));
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
    public static async Task<int> RunAsync(CommandLine cl, TextWriter stdout, CancellationToken ct)
    {
        cl.OnlyAllow("root", "url", "json");
        AgentStatusDto status;
        if (cl.Get("url") is { } url)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            status = JsonSerializer.Deserialize(await http.GetStringAsync(url.TrimEnd('/') + "/status", ct).ConfigureAwait(false), StatusJsonContext.Default.AgentStatusDto)
                ?? throw new UsageException($"{url}/status returned no status");
        }
        else
        {
            var root = cl.Get("root") ?? throw new UsageException("list needs --root DIR or --url URL");
            if (!Directory.Exists(root))
            {
                throw new UsageException($"--root {root} does not exist");
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
        if (cl.Has("json"))
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
