using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
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
/// A loopback server implementing the Hugging Face Hub endpoints the agent uses, as documented:
/// <c>GET /api/models/{owner}/{repo}/revision/{rev}</c> (→ <c>{"sha": …}</c>),
/// <c>GET /api/models/{owner}/{repo}/tree/{rev}?recursive=true</c> (paginated with <c>Link: rel="next"</c>),
/// and <c>GET /{owner}/{repo}/resolve/{rev}/{path}</c>, which for LFS files redirects to a CDN path (as
/// the Hub does) serving byte ranges. Private repositories require <c>Authorization: Bearer {token}</c>.
/// </summary>
public sealed class LoopbackHub : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Dictionary<string, HubRepo> _repos = new(StringComparer.Ordinal);

    private LoopbackHub(WebApplication app) => _app = app;

    public string Endpoint { get; private set; } = "";

    public int PageSize { get; set; } = 2;

    public List<string> SeenAuthorization { get; } = [];

    public sealed class HubRepo
    {
        public string Commit { get; init; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
        public Dictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);
        public HashSet<string> Lfs { get; } = new(StringComparer.Ordinal);
        public string? Token { get; init; }
        /// <summary>Files whose checksum (LFS sha256, or git blob id outside LFS) is announced for other content than served.</summary>
        public HashSet<string> WrongOid { get; } = new(StringComparer.Ordinal);
        /// <summary>Raw paths listed in the tree beyond Files (to test unsafe names).</summary>
        public List<string> ExtraTreePaths { get; } = [];
    }

    public static async Task<LoopbackHub> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var hub = new LoopbackHub(app);
        app.MapGet("/api/models/{owner}/{repo}/revision/{rev}", hub.Revision);
        app.MapGet("/api/models/{owner}/{repo}/tree/{rev}", hub.Tree);
        app.MapMethods("/{owner}/{repo}/resolve/{rev}/{**path}", ["GET", "HEAD"], hub.Resolve);
        app.MapMethods("/cdn/{owner}/{repo}/{**path}", ["GET", "HEAD"], hub.Cdn);
        await app.StartAsync();
        hub.Endpoint = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return hub;
    }

    public HubRepo AddRepo(string id, string? token = null)
    {
        var r = new HubRepo { Token = token };
        _repos[id] = r;
        return r;
    }

    private bool Authorized(HttpContext ctx, HubRepo repo, out IResult? denied)
    {
        var auth = ctx.Request.Headers.Authorization.ToString();
        lock (SeenAuthorization)
        {
            SeenAuthorization.Add(ctx.Request.Path + " " + auth);
        }
        denied = null;
        if (repo.Token is not null && auth != "Bearer " + repo.Token)
        {
            denied = Results.Json(new { error = "Access to model is restricted." }, statusCode: 401);
            return false;
        }
        return true;
    }

    private IResult Revision(HttpContext ctx, string owner, string repo, string rev)
    {
        if (!_repos.TryGetValue($"{owner}/{repo}", out var r))
        {
            return Results.Json(new { error = "Repository not found" }, statusCode: 401);
        }
        if (!Authorized(ctx, r, out var denied))
        {
            return denied!;
        }
        if (rev != "main" && rev != r.Commit)
        {
            return Results.Json(new { error = "Invalid rev id" }, statusCode: 404);
        }
        return Results.Json(new { id = $"{owner}/{repo}", sha = r.Commit, siblings = r.Files.Keys.Select(k => new { rfilename = k }) });
    }

    private IResult Tree(HttpContext ctx, string owner, string repo, string rev, int? page)
    {
        if (!_repos.TryGetValue($"{owner}/{repo}", out var r) || rev != r.Commit)
        {
            return Results.Json(new { error = "not found" }, statusCode: 404);
        }
        if (!Authorized(ctx, r, out var denied))
        {
            return denied!;
        }
        var entries = new List<object>();
        foreach (var dir in r.Files.Keys.Where(k => k.Contains('/', StringComparison.Ordinal)).Select(k => k[..k.LastIndexOf('/')]).Distinct())
        {
            entries.Add(new { type = "directory", oid = "0", size = 0, path = dir });
        }
        foreach (var (path, data) in r.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            // The git blob id, as the Hub lists it: of the content for a plain file, of the pointer file for an LFS one.
            var blob = GitBlobId(r.Lfs.Contains(path) ? Encoding.UTF8.GetBytes($"version https://git-lfs.github.com/spec/v1\noid sha256:{Convert.ToHexStringLower(SHA256.HashData(data))}\nsize {data.Length}\n")
                : r.WrongOid.Contains(path) ? [.. data, 1] : data);
            if (r.Lfs.Contains(path))
            {
                var oid = Convert.ToHexStringLower(SHA256.HashData(r.WrongOid.Contains(path) ? [.. data, 1] : data));
                entries.Add(new { type = "file", oid = blob, size = data.LongLength, path, lfs = new { oid, size = data.LongLength, pointerSize = 134 } });
            }
            else
            {
                entries.Add(new { type = "file", oid = blob, size = data.LongLength, path });
            }
        }
        foreach (var p in r.ExtraTreePaths)
        {
            entries.Add(new { type = "file", oid = "0", size = 1L, path = p });
        }
        var p0 = page ?? 0;
        var slice = entries.Skip(p0 * PageSize).Take(PageSize).ToList();
        if ((p0 + 1) * PageSize < entries.Count)
        {
            ctx.Response.Headers.Link = $"<{Endpoint}/api/models/{owner}/{repo}/tree/{rev}?recursive=true&page={p0 + 1}>; rel=\"next\"";
        }
        return Results.Json(slice);
    }

    private IResult Resolve(HttpContext ctx, string owner, string repo, string rev, string path)
    {
        if (!_repos.TryGetValue($"{owner}/{repo}", out var r) || (rev != r.Commit && rev != "main") || !r.Files.TryGetValue(path, out var data))
        {
            return Results.NotFound();
        }
        if (!Authorized(ctx, r, out var denied))
        {
            return denied!;
        }
        if (r.Lfs.Contains(path))
        {
            // The real Hub redirects LFS files to its CDN, another host (with a signed URL); the client must not forward
            // its token there. "localhost" is this server under another host name than the endpoint's 127.0.0.1.
            return Results.Redirect($"http://localhost:{ctx.Connection.LocalPort}/cdn/{owner}/{repo}/{path}?sig=x");
        }
        return Results.Bytes(data, "application/octet-stream", enableRangeProcessing: true, entityTag: new EntityTagHeaderValue("\"" + r.Commit + "\""));
    }

    private IResult Cdn(HttpContext ctx, string owner, string repo, string path)
    {
        lock (SeenAuthorization)
        {
            SeenAuthorization.Add(ctx.Request.Path + " " + ctx.Request.Headers.Authorization);
        }
        if (!_repos.TryGetValue($"{owner}/{repo}", out var r) || !r.Files.TryGetValue(path, out var data))
        {
            return Results.NotFound();
        }
        return Results.Bytes(data, "application/octet-stream", enableRangeProcessing: true);
    }

#pragma warning disable CA5350 // git names blobs by SHA-1; this computes the name, it protects nothing.
    /// <summary>git's blob id: SHA-1 over <c>blob {size}\0</c> and the content (what <c>git hash-object</c> prints).</summary>
    public static string GitBlobId(byte[] content) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {content.Length}\0"), .. content]));
#pragma warning restore CA5350

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    internal static string Json(object o) => JsonSerializer.Serialize(o);
}
