using KServe.Node.CacheController.Controllers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KServe.Node.CacheController.Webhooks;

/// <summary>The admission webhook routes (KServe's paths).</summary>
internal static class WebhookEndpoints
{
    public const string ClusterCachePath = "/validate-serving-kserve-io-v1alpha1-localmodelcache";
    public const string NamespaceCachePath = "/validate-serving-kserve-io-v1alpha1-localmodelnamespacecache";

    /// <summary>The path in KServe's kubebuilder marker for the namespace validator, served too.</summary>
    public const string NamespaceCacheMarkerPath = "/validate-localmodelnamespacecaches";

    private const int MaxBodyBytes = 3 * 1024 * 1024;

    public static void MapCacheWebhooks(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(ClusterCachePath, HandleClusterAsync);
        endpoints.MapPost(NamespaceCachePath, HandleNamespaceAsync);
        endpoints.MapPost(NamespaceCacheMarkerPath, HandleNamespaceAsync);
    }

    private static Task HandleClusterAsync(HttpContext ctx) => HandleAsync(ctx, namespaced: false);

    private static Task HandleNamespaceAsync(HttpContext ctx) => HandleAsync(ctx, namespaced: true);

    private static async Task HandleAsync(HttpContext ctx, bool namespaced)
    {
        var logger = ctx.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("KServe.Node.CacheController.Webhooks");
        using var buffer = new MemoryStream();
        var limited = ctx.Request.ContentLength is > MaxBodyBytes;
        if (!limited)
        {
            await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted).ConfigureAwait(false);
            limited = buffer.Length > MaxBodyBytes;
        }

        if (limited)
        {
            await PlainAsync(ctx, StatusCodes.Status413PayloadTooLarge, "the AdmissionReview is larger than 3 MiB").ConfigureAwait(false);
            return;
        }

        if (!AdmissionReviews.TryParse(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), out var review, out var error))
        {
            Log.AdmissionBadRequest(logger, error!);
            await PlainAsync(ctx, StatusCodes.Status400BadRequest, error!).ConfigureAwait(false);
            return;
        }

        var validator = ctx.RequestServices.GetRequiredService<CacheValidator>();
        AdmissionDecision decision;
        try
        {
            decision = namespaced
                ? await validator.ValidateNamespaceCacheAsync(review!.Request!, ctx.RequestAborted).ConfigureAwait(false)
                : await validator.ValidateClusterCacheAsync(review!.Request!, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            decision = AdmissionDecision.Error(e.Message);
        }

        ctx.Response.ContentType = "application/json";
        await ctx.Response.Body.WriteAsync(AdmissionReviews.Respond(review!.ApiVersion, review.Request!.Uid!, decision), ctx.RequestAborted).ConfigureAwait(false);
    }

    private static Task PlainAsync(HttpContext ctx, int code, string message)
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        return ctx.Response.WriteAsync(message, ctx.RequestAborted);
    }
}
