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

    /// <summary>Reads the whole body, bounded by Kestrel's request size limit (413 beyond it).</summary>
    public static async Task<byte[]> ReadBodyAsync(HttpContext ctx, long limit)
    {
        using var ms = new MemoryStream();
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
        return ms.ToArray();
    }
}
