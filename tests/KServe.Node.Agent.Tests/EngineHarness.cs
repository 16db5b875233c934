using System.Collections.Concurrent;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Store;
using KServe.Node.TestKit.S3;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Agent.Tests;

/// <summary>The real engine over a real store in a temp root, with its log lines captured.</summary>
internal sealed class EngineHarness : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _loop;
    private readonly ILoggerFactory _loggers;
    private readonly HttpClient _http = SourceFactory.CreateHttpClient();

    public EngineHarness(string root, DownloadOptions? options = null, IStoreIo? io = null)
    {
        Options = options ?? new DownloadOptions { Streams = 4, ChunkSizeBytes = 4 << 20, ReserveBytes = 0, GcGrace = TimeSpan.Zero };
        Logs = new CapturingLoggerProvider();
        _loggers = LoggerFactory.Create(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Trace));
        Store = new ModelStore(root, io);
        Engine = new CacheEngine(Store, new ModelFetcher(Options, _http, TimeProvider.System, _loggers.CreateLogger<ModelFetcher>()),
            Options, TimeProvider.System, _loggers.CreateLogger<CacheEngine>())
        {
            ErrorRetryDelay = TimeSpan.FromHours(1),
        };
        _loop = Task.Run(() => Engine.RunAsync(_cts.Token));
    }

    public DownloadOptions Options { get; }
    public ModelStore Store { get; }
    public CacheEngine Engine { get; }
    public CapturingLoggerProvider Logs { get; }

    public static ModelSpec Spec(string name, string uri, SourceSettings? settings = null, string? allow = null) =>
        new(name, uri, new FileFilter(allow, null), settings ?? SourceSettings.Empty);

    /// <summary>Every state a status key goes through from now on (for tests that must never see Pending).</summary>
    public List<string> RecordStates(string statusKey, CancellationToken ct)
    {
        var seen = new List<string>();
        _ = Task.Run(async () =>
        {
            while (!ct.IsCancellationRequested)
            {
                var next = Engine.NextChange;
                if (Engine.Snapshot().FirstOrDefault(v => v.StatusKey == statusKey) is { } v)
                {
                    lock (seen)
                    {
                        if (seen.Count == 0 || seen[^1] != v.State)
                        {
                            seen.Add(v.State);
                        }
                    }
                }
                try
                {
                    await next.WaitAsync(ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }, CancellationToken.None);
        return seen;
    }

    public async Task<ModelStatusView> WaitFor(string statusKey, string state, TimeSpan? timeout = null)
    {
        var snap = await Engine.WaitForAsync(s => s.Any(v => v.StatusKey == statusKey && v.State == state), timeout ?? TimeSpan.FromSeconds(60));
        return snap.Single(v => v.StatusKey == statusKey);
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        await _loop;
        Engine.Dispose();
        _loggers.Dispose();
        _http.Dispose();
        _cts.Dispose();
    }
}

internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Capture(this, categoryName);

    public void Dispose() { }

    public string All => string.Join("\n", Lines);

    private sealed class Capture(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
    }
}

/// <summary>Test-side S3 client for s3rver (fixed credentials, path style, no aws-chunked uploads).</summary>
internal static class S3TestClient
{
    public static AmazonS3Client For(string endpoint) => new(new BasicAWSCredentials(S3rverProcess.AccessKey, S3rverProcess.SecretKey),
        new AmazonS3Config { ServiceURL = endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1" });

    public static async Task PutAsync(this AmazonS3Client s3, string bucket, string key, byte[] data)
    {
        await s3.PutObjectAsync(new PutObjectRequest
        {
            BucketName = bucket,
            Key = key,
            InputStream = new MemoryStream(data),
            // s3rver stores aws-chunked bodies verbatim (see the facts note).
            UseChunkEncoding = false,
        });
    }

    public static SourceSettings Settings(string endpoint, string? secret = null) => new(new Dictionary<string, string>
    {
        ["AWS_ENDPOINT_URL"] = endpoint,
        ["AWS_ACCESS_KEY_ID"] = S3rverProcess.AccessKey,
        ["AWS_SECRET_ACCESS_KEY"] = secret ?? S3rverProcess.SecretKey,
        ["AWS_DEFAULT_REGION"] = "us-east-1",
    });
}
