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
/// stream of unknown length.
/// </summary>
public sealed class RangeHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string[]> _listings = new(StringComparer.Ordinal);
    private long _rangeRequests;

    private RangeHttpServer(WebApplication app) => _app = app;

    public string BaseUrl { get; private set; } = "";

    /// <summary>Paths served with one byte flipped (the digest still describes the true content).</summary>
    public ConcurrentDictionary<string, bool> Corrupt { get; } = new(StringComparer.Ordinal);

    /// <summary>Paths served chunked, with no length and no range support.</summary>
    public ConcurrentDictionary<string, bool> Unsized { get; } = new(StringComparer.Ordinal);

    public long RangeRequests => Interlocked.Read(ref _rangeRequests);

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
}
