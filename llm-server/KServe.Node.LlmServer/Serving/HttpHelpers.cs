using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using KServe.Node.LlmServer.Api;
using Microsoft.AspNetCore.Http;

namespace KServe.Node.LlmServer.Serving;

internal static class HttpHelpers
{
    public static async Task WriteJsonAsync<T>(HttpContext ctx, int status, T value, JsonTypeInfo<T> typeInfo)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, typeInfo, ctx.RequestAborted).ConfigureAwait(false);
    }

    public static Task WriteErrorAsync(HttpContext ctx, ApiException e)
    {
        if (e.RetryAfterSeconds is { } retry)
        {
            ctx.Response.Headers.RetryAfter = retry.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return WriteJsonAsync(ctx, e.Status, e.ToBody(), ApiJsonContext.Wire.ErrorBody);
    }

    /// <summary>
    /// Reads the whole body, bounded by <paramref name="limit"/> (413 beyond it), into one buffer (sized from
    /// Content-Length up to 1 MiB, grown beyond), without a second copy. The body is read before any refusal:
    /// a response sent while the client is still sending can reach it as a reset connection instead.
    /// </summary>
    public static async Task<ReadOnlyMemory<byte>> ReadBodyAsync(HttpContext ctx, long limit)
    {
        // Sized from Content-Length, but a claim alone never reserves more than 1 MiB before the bytes arrive.
        var ms = new MemoryStream((int)Math.Min(ctx.Request.ContentLength ?? 0, Math.Min(limit, 1 << 20)));
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await ctx.Request.Body.ReadAsync(buffer, ctx.RequestAborted).ConfigureAwait(false)) > 0)
        {
            if (ms.Length + read > limit)
            {
                throw ApiException.TooLarge(limit);
            }
            ms.Write(buffer, 0, read);
        }
        return new ReadOnlyMemory<byte>(ms.GetBuffer(), 0, (int)ms.Length);
    }
}
