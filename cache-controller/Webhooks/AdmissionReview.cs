using System.Text.Json;
using System.Text.Json.Serialization;

namespace KServe.Node.CacheController.Webhooks;

/// <summary>The <c>admission.k8s.io/v1</c> AdmissionReview envelope (request in, response out).</summary>
internal sealed class AdmissionReview
{
    [JsonPropertyName("apiVersion")]
    public string? ApiVersion { get; set; }

    [JsonPropertyName("kind")]
    public string? Kind { get; set; }

    [JsonPropertyName("request")]
    public AdmissionRequest? Request { get; set; }

    [JsonPropertyName("response")]
    public AdmissionResponse? Response { get; set; }
}

internal sealed class GroupVersionKind
{
    [JsonPropertyName("group")]
    public string? Group { get; set; }

    [JsonPropertyName("version")]
    public string? Version { get; set; }

    [JsonPropertyName("kind")]
    public string? Kind { get; set; }
}

internal sealed class AdmissionRequest
{
    [JsonPropertyName("uid")]
    public string? Uid { get; set; }

    [JsonPropertyName("kind")]
    public GroupVersionKind? Kind { get; set; }

    [JsonPropertyName("name")]
    public string? Name { get; set; }

    [JsonPropertyName("namespace")]
    public string? Namespace { get; set; }

    /// <summary>CREATE, UPDATE, DELETE or CONNECT.</summary>
    [JsonPropertyName("operation")]
    public string? Operation { get; set; }

    [JsonPropertyName("object")]
    public JsonElement? Object { get; set; }

    [JsonPropertyName("oldObject")]
    public JsonElement? OldObject { get; set; }

    [JsonPropertyName("dryRun")]
    public bool? DryRun { get; set; }
}

internal sealed class AdmissionResponse
{
    [JsonPropertyName("uid")]
    public string Uid { get; set; } = "";

    [JsonPropertyName("allowed")]
    public bool Allowed { get; set; }

    [JsonPropertyName("status")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public AdmissionStatus? Status { get; set; }
}

/// <summary>The <c>metav1.Status</c> subset an admission response carries.</summary>
internal sealed class AdmissionStatus
{
    [JsonPropertyName("code")]
    public int Code { get; set; }

    [JsonPropertyName("message")]
    public string? Message { get; set; }

    [JsonPropertyName("reason")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Reason { get; set; }
}

[JsonSerializable(typeof(AdmissionReview))]
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class AdmissionJsonContext : JsonSerializerContext;

/// <summary>A webhook's verdict, turned into an AdmissionResponse by <see cref="AdmissionReviews"/>.</summary>
internal sealed record AdmissionDecision(bool Allowed, int Code, string? Reason, string? Message)
{
    public static AdmissionDecision Allow() => new(true, 200, null, null);

    /// <summary>Denied by policy (controller-runtime's <c>Denied</c>: 403 Forbidden).</summary>
    public static AdmissionDecision Deny(string message) => new(false, 403, "Forbidden", message);

    /// <summary>The request itself is unusable (controller-runtime's <c>Errored</c> with 400).</summary>
    public static AdmissionDecision BadRequest(string message) => new(false, 400, "BadRequest", message);

    /// <summary>The webhook could not decide (a lookup failed): refused, with the cause.</summary>
    public static AdmissionDecision Error(string message) => new(false, 500, "InternalError", message);
}

/// <summary>Reading AdmissionReview requests and writing their responses.</summary>
internal static class AdmissionReviews
{
    public const string ApiVersion = "admission.k8s.io/v1";

    /// <summary>Parses a request body; a clear message when it is not an AdmissionReview with a request.</summary>
    public static bool TryParse(ReadOnlySpan<byte> body, out AdmissionReview? review, out string? error)
    {
        review = null;
        error = null;
        try
        {
            review = JsonSerializer.Deserialize(body, AdmissionJsonContext.Default.AdmissionReview);
        }
        catch (JsonException ex)
        {
            error = $"the body is not valid AdmissionReview JSON: {ex.Message}";
            return false;
        }

        if (review?.Request is null)
        {
            error = "the AdmissionReview has no request";
            return false;
        }

        if (string.IsNullOrEmpty(review.Request.Uid))
        {
            error = "the AdmissionReview request has no uid";
            return false;
        }

        return true;
    }

    /// <summary>The response envelope for <paramref name="uid"/>, in the request's apiVersion (v1 by default).</summary>
    public static byte[] Respond(string? apiVersion, string uid, AdmissionDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        var review = new AdmissionReview
        {
            ApiVersion = string.IsNullOrEmpty(apiVersion) ? ApiVersion : apiVersion,
            Kind = "AdmissionReview",
            Response = new AdmissionResponse
            {
                Uid = uid,
                Allowed = decision.Allowed,
                Status = decision.Allowed && decision.Message is null
                    ? null
                    : new AdmissionStatus { Code = decision.Code, Message = decision.Message, Reason = decision.Reason },
            },
        };
        return JsonSerializer.SerializeToUtf8Bytes(review, AdmissionJsonContext.Default.AdmissionReview);
    }
}
