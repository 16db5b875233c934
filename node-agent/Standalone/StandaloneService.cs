using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Agent.Standalone;

/// <summary>Where standalone mode reads its caches from.</summary>
/// <param name="ConfigDir">Folder of LocalModelCache YAML files.</param>
/// <param name="StorageLimitBytes">A cap from the command line (the node group's storageLimit also applies).</param>
internal sealed record StandaloneSettings(string ConfigDir, long? StorageLimitBytes);

/// <summary>
/// Feeds the engine from the config folder: at start, on every change in the folder (watched), and
/// every <see cref="RescanInterval"/> (a watcher can miss events on some file systems).
/// </summary>
internal sealed partial class StandaloneService(StandaloneSettings settings, CacheEngine engine, TimeProvider time, ILogger<StandaloneService> logger)
    : BackgroundService
{
    private readonly SemaphoreSlim _changed = new(0);
    private string _lastErrors = "";

    public static TimeSpan RescanInterval { get; set; } = TimeSpan.FromSeconds(30);

    public IReadOnlyList<string> ConfigErrors { get; private set; } = [];

    public bool Loaded { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // A missing folder is not created: it may be a config volume not mounted yet, and it reads as incomplete.
        FileSystemWatcher? watcher = null;
        try
        {
            Task? wait = null;
            while (!stoppingToken.IsCancellationRequested)
            {
                // Watch before reading: a change made while the folder is read must raise an event.
                watcher ??= Watch();
                Reload();
                wait ??= _changed.WaitAsync(stoppingToken);
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                await Task.WhenAny(wait, Task.Delay(RescanInterval, time, tick.Token)).ConfigureAwait(false);
                await tick.CancelAsync().ConfigureAwait(false);
                if (wait.IsCompleted)
                {
                    wait = null;
                    // Editors write in several steps; drain the burst.
                    while (_changed.CurrentCount > 0)
                    {
                        await _changed.WaitAsync(stoppingToken).ConfigureAwait(false);
                    }
                }
            }
        }
        finally
        {
            watcher?.Dispose();
        }
    }

    private FileSystemWatcher? Watch()
    {
        if (!Directory.Exists(settings.ConfigDir))
        {
            return null;
        }
        var watcher = new FileSystemWatcher(settings.ConfigDir) { IncludeSubdirectories = false, EnableRaisingEvents = true };
        watcher.Changed += (_, _) => _changed.Release();
        watcher.Created += (_, _) => _changed.Release();
        watcher.Deleted += (_, _) => _changed.Release();
        watcher.Renamed += (_, _) => _changed.Release();
        return watcher;
    }

    internal void Reload()
    {
        var config = CacheConfigLoader.Load(settings.ConfigDir, SourceSettings.FromEnvironment(),
            Path.Combine(engine.Store.StateDir, "config"), engine.Store.Io);
        var errors = string.Join("\n", config.Errors);
        if (errors != _lastErrors)
        {
            foreach (var e in config.Errors)
            {
                LogConfigError(logger, e);
            }
            _lastErrors = errors;
        }
        ConfigErrors = config.Errors;
        engine.StorageLimitBytes = (settings.StorageLimitBytes, config.StorageLimitBytes) switch
        {
            ({ } a, { } b) => Math.Min(a, b),
            (var a, var b) => a ?? b,
        };
        engine.SetDesired(config.Models, config.Complete);
        Loaded = true;
    }

    public override void Dispose()
    {
        _changed.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Config: {Error}")]
    private static partial void LogConfigError(ILogger logger, string error);
}

/// <summary>Runs the engine loop for the host's lifetime.</summary>
internal sealed class EngineService(CacheEngine engine) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => engine.RunAsync(stoppingToken);
}
