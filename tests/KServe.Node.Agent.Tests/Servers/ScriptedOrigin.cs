using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Agent.Tests.Servers;

/// <summary>
/// A real HTTP origin on loopback whose answers a test scripts per path (a redirect, a wrong byte range, ...), and
/// which records the headers of every request it received, so that a test can assert what reached which host.
/// </summary>
public sealed class ScriptedOrigin : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, Func<HttpContext, Task>> _routes = new(StringComparer.Ordinal);

    private ScriptedOrigin(WebApplication app) => _app = app;

    public string BaseUrl { get; private set; } = "";

    public int Port { get; private set; }

    /// <summary>Every request: path and query, then the request headers.</summary>
    public ConcurrentQueue<(string Path, IReadOnlyDictionary<string, string> Headers)> Requests { get; } = new();

    public static async Task<ScriptedOrigin> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var origin = new ScriptedOrigin(app);
        app.Run(origin.HandleAsync);
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        origin.BaseUrl = url;
        origin.Port = new Uri(url).Port;
        return origin;
    }

    public void On(string path, Func<HttpContext, Task> handler) => _routes[path] = handler;

    /// <summary>Serves <paramref name="data"/> with byte ranges and the given validator (the usual, honest answer).</summary>
    public void File(string path, byte[] data, string etag = "\"v1\"") => On(path, ctx => Results.Bytes(data, "application/octet-stream",
        enableRangeProcessing: true, entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue(etag)).ExecuteAsync(ctx));

    public void Redirect(string path, string location) => On(path, ctx =>
    {
        ctx.Response.StatusCode = 302;
        ctx.Response.Headers.Location = location;
        return Task.CompletedTask;
    });

    public IEnumerable<IReadOnlyDictionary<string, string>> HeadersFor(string path) =>
        Requests.Where(r => r.Path.Split('?')[0] == path).Select(r => r.Headers);

    private async Task HandleAsync(HttpContext ctx)
    {
        Requests.Enqueue((ctx.Request.Path + ctx.Request.QueryString, ctx.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));
        if (_routes.TryGetValue(ctx.Request.Path.Value ?? "", out var handler))
        {
            await handler(ctx);
            return;
        }
        ctx.Response.StatusCode = 404;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
