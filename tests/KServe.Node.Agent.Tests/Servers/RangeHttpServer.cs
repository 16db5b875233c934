using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace KServe.Node.Agent.Tests.Servers;

/// <summary>
/// A plain HTTP file server on loopback (Kestrel): GET/HEAD with byte ranges, strong ETags, and a
/// <c>Repr-Digest</c> (sha-256) of each file's true content; folders ending in '/' answer an
/// nginx-autoindex-like HTML listing. Files can be served corrupted (one byte flipped) or as a chunked
/// stream of unknown length. It counts the file bytes it serves (listings and HEADs carry none), and can pace
/// them (<see cref="BytesPerSecond"/>) so that a test can act mid-download.
/// </summary>
public sealed class RangeHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string[]> _listings = new(StringComparer.Ordinal);
    private long _rangeRequests;
    private long _served;
    private readonly List<(long Bytes, TaskCompletionSource Signal)> _watchers = [];
    private readonly Lock _paceLock = new();
    private DateTime _paceNext = DateTime.MinValue;

    private RangeHttpServer(WebApplication app) => _app = app;

    public string BaseUrl { get; private set; } = "";

    /// <summary>Paths served with one byte flipped (the digest still describes the true content).</summary>
    public ConcurrentDictionary<string, bool> Corrupt { get; } = new(StringComparer.Ordinal);

    /// <summary>Paths served chunked, with no length and no range support.</summary>
    public ConcurrentDictionary<string, bool> Unsized { get; } = new(StringComparer.Ordinal);

    public long RangeRequests => Interlocked.Read(ref _rangeRequests);

    /// <summary>File body bytes written to clients so far.</summary>
    public long BytesServed => Interlocked.Read(ref _served);

    /// <summary>When set, file bytes go out at about this rate in total (all connections together).</summary>
    public long? BytesPerSecond { get; set; }

    /// <summary>Completes once at least <paramref name="bytes"/> file bytes have been served.</summary>
    public Task WhenServedAtLeast(long bytes)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_watchers)
        {
            _watchers.Add((bytes, tcs));
        }
        Served(0);
        return tcs.Task;
    }

    private void Served(long bytes)
    {
        var total = Interlocked.Add(ref _served, bytes);
        lock (_watchers)
        {
            foreach (var w in _watchers.Where(w => w.Bytes <= total).ToList())
            {
                w.Signal.TrySetResult();
                _watchers.Remove(w);
            }
        }
    }

    /// <summary>How long to hold back <paramref name="bytes"/> to keep to <see cref="BytesPerSecond"/>.</summary>
    private TimeSpan Pace(int bytes)
    {
        if (BytesPerSecond is not { } rate)
        {
            return TimeSpan.Zero;
        }
        lock (_paceLock)
        {
            var now = DateTime.UtcNow;
            var start = _paceNext > now ? _paceNext : now;
            _paceNext = start + TimeSpan.FromSeconds(bytes / (double)rate);
            return start - now;
        }
    }

    public static async Task<RangeHttpServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new RangeHttpServer(app);
        app.MapMethods("/{**path}", ["GET", "HEAD"], server.Handle);
        await app.StartAsync();
        server.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return server;
    }

    public void AddFile(string path, byte[] content) => _files[path.TrimStart('/')] = content;

    /// <summary>A listing page for <paramref name="folder"/> (ending in '/') with these raw href values.</summary>
    public void AddListing(string folder, params string[] hrefs) => _listings[folder.TrimStart('/')] = hrefs;

    private async Task<IResult> Handle(HttpContext ctx, string? path)
    {
        path ??= "";
        if (path.Length == 0 || path.EndsWith('/'))
        {
            if (!_listings.TryGetValue(path, out var hrefs))
            {
                return Results.NotFound();
            }
            var html = new StringBuilder("<html><head><title>Index</title></head><body><h1>Index</h1><hr><pre><a href=\"../\">../</a>\n");
            foreach (var h in hrefs)
            {
                html.Append("<a href=\"").Append(h).Append("\">").Append(WebUtility.HtmlEncode(h)).Append("</a>\n");
            }
            html.Append("</pre><hr></body></html>");
            return Results.Content(html.ToString(), "text/html");
        }
        if (!_files.TryGetValue(path, out var data))
        {
            return Results.NotFound();
        }
        if (Unsized.ContainsKey(path))
        {
            if (HttpMethods.IsHead(ctx.Request.Method))
            {
                return Results.Ok();
            }
            ctx.Response.ContentType = "application/octet-stream";
            for (var i = 0; i < data.Length; i += 1 << 20)
            {
                await ctx.Response.Body.WriteAsync(data.AsMemory(i, Math.Min(1 << 20, data.Length - i)), ctx.RequestAborted);
            }
            return Results.Empty;
        }
        if (ctx.Request.Headers.Range.Count > 0)
        {
            Interlocked.Increment(ref _rangeRequests);
        }
        if (!HttpMethods.IsHead(ctx.Request.Method))
        {
            ctx.Response.Body = new CountingStream(ctx.Response.Body, this);
        }
        var sha = SHA256.HashData(data);
        ctx.Response.Headers["Repr-Digest"] = $"sha-256=:{Convert.ToBase64String(sha)}:";
        var body = data;
        if (Corrupt.ContainsKey(path))
        {
            body = (byte[])data.Clone();
            body[body.Length / 2] ^= 0x5A;
        }
        return Results.Bytes(body, "application/octet-stream", enableRangeProcessing: true,
            entityTag: new EntityTagHeaderValue("\"" + Convert.ToHexStringLower(sha)[..16] + "\""));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>The response body of a file: counts what goes out, in pieces paced to the server's rate.</summary>
    private sealed class CountingStream(Stream inner, RangeHttpServer server) : Stream
    {
        private const int Piece = 64 << 10;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            for (var i = 0; i < buffer.Length; i += Piece)
            {
                var piece = buffer.Slice(i, Math.Min(Piece, buffer.Length - i));
                if (server.Pace(piece.Length) is { } wait && wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken);
                }
                // Counted before the write: a client can have the last byte before a write call returns.
                server.Served(piece.Length);
                await inner.WriteAsync(piece, cancellationToken);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
