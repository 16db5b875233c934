using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using KServe.Node.LlmServer.Api;
using KServe.Node.LlmServer.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KServe.Node.LlmServer.Serving;

internal static class Middleware
{
    public const string RequestIdHeader = "X-Request-Id";

    /// <summary>
    /// Request id (taken from a well-formed incoming header, else new) in a logging scope and the response,
    /// one access-log line per request, and the error barrier: API errors and malformed HTTP become
    /// OpenAI-shaped 4xx answers, a client that went away is not an error.
    /// </summary>
    public static IApplicationBuilder UseLlmServerPipeline(this IApplicationBuilder app)
    {
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("KServe.Node.LlmServer.Http");
        var options = app.ApplicationServices.GetRequiredService<IOptions<LlmServerOptions>>().Value;
        var keys = options.ApiKeys.Where(k => !string.IsNullOrEmpty(k)).Select(k => Encoding.UTF8.GetBytes(k)).ToArray();
        app.Use(async (ctx, next) =>
        {
            var incoming = ctx.Request.Headers[RequestIdHeader].ToString();
            var requestId = IsSaneId(incoming) ? incoming : "req-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
            ctx.TraceIdentifier = requestId;
            ctx.Response.Headers[RequestIdHeader] = requestId;
            var sw = Stopwatch.StartNew();
            using (logger.BeginScope("RequestId:{RequestId}", requestId))
            {
                try
                {
                    if (keys.Length > 0 && !HttpMethods.IsOptions(ctx.Request.Method) && NeedsKey(ctx.Request.Path) && !HasValidKey(ctx, keys))
                    {
                        throw ApiException.Unauthorized();
                    }
                    await next(ctx).ConfigureAwait(false);
                }
                catch (ApiException e)
                {
                    Log.Rejected(logger, e.Status, e.Code, e.Message);
                    if (!ctx.Response.HasStarted)
                    {
                        await HttpHelpers.WriteErrorAsync(ctx, e).ConfigureAwait(false);
                    }
                }
                catch (BadHttpRequestException e)
                {
                    if (!ctx.Response.HasStarted)
                    {
                        var status = e.StatusCode is >= 400 and < 500 ? e.StatusCode : 400;
                        var error = status == 413
                            ? ApiException.TooLarge(options.MaxRequestBytes)
                            : new ApiException(status, e.Message, "invalid_request_error");
                        await HttpHelpers.WriteErrorAsync(ctx, error).ConfigureAwait(false);
                    }
                }
                catch (InvalidOperationException e) when (!ctx.Response.HasStarted && e.TargetSite?.DeclaringType?.Assembly == typeof(System.Text.Json.JsonDocument).Assembly)
                {
                    // System.Text.Json checks escapes such as a lone \ud800 only when a string is read.
                    var error = ApiException.InvalidJson(e.Message);
                    Log.Rejected(logger, error.Status, error.Code, error.Message);
                    await HttpHelpers.WriteErrorAsync(ctx, error).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
                {
                    // The client went away; nothing to answer.
                }
                catch (Exception e) when (!ctx.Response.HasStarted)
                {
                    Log.Unhandled(logger, ctx.Request.Path, e);
                    await HttpHelpers.WriteErrorAsync(ctx, new ApiException(500, "Internal server error.", "server_error")).ConfigureAwait(false);
                }
                Log.RequestDone(logger, ctx.Request.Method, ctx.Request.Path, ctx.Response.StatusCode, sw.ElapsedMilliseconds);
            }
        });
        return app;
    }

    private static bool IsSaneId(string id) =>
        id.Length is > 0 and <= 128 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':');

    private static bool NeedsKey(PathString path) =>
        path.StartsWithSegments("/v1") || path.StartsWithSegments("/openai") || path.StartsWithSegments("/tokenize")
        || path.StartsWithSegments("/detokenize") || path.StartsWithSegments("/apply-template");

    private static bool HasValidKey(HttpContext ctx, byte[][] keys)
    {
        var header = ctx.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        var given = Encoding.UTF8.GetBytes(header[7..].Trim());
        var ok = false;
        foreach (var k in keys)
        {
            // Constant-time per key, and every key is compared, so timing tells nothing about which matched.
            ok |= CryptographicOperations.FixedTimeEquals(given, k);
        }
        return ok;
    }
}
