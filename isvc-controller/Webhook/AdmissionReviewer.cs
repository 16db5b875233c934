using System.Text.Json;
using System.Text.Json.Nodes;
using KServe.Node.IsvcController.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace KServe.Node.IsvcController.Webhook;

/// <summary>
/// The validating admission webhook for InferenceServices (KServe's path
/// <c>/validate-serving-kserve-io-v1beta1-inferenceservice</c>): rejects, with KServe's messages, what KServe's
/// webhook rejects, for InferenceServices of our runtime; allows everything else.
/// </summary>
internal static class AdmissionReviewer
{
    public const string Path = "/validate-serving-kserve-io-v1beta1-inferenceservice";

    /// <summary>Answers one <c>admission.k8s.io/v1</c> AdmissionReview.</summary>
    /// <exception cref="FormatException">The body is not an AdmissionReview with a request.</exception>
    public static JsonObject Review(JsonNode? body, IsvcControllerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (body is not JsonObject review || review["request"] is not JsonObject request)
        {
            throw new FormatException("the body is not an AdmissionReview with a request");
        }

        var uid = request["uid"] is JsonValue u && u.TryGetValue(out string? s) ? s : throw new FormatException("request.uid is missing");
        var apiVersion = review["apiVersion"] is JsonValue av && av.TryGetValue(out string? a) ? a : "admission.k8s.io/v1";
        var operation = request["operation"] is JsonValue op && op.TryGetValue(out string? o) ? o : "";

        string? denial = null;
        if (operation is "CREATE" or "UPDATE" && request["object"] is JsonObject obj)
        {
            var (spec, errors) = IsvcReader.Read(obj);
            // A deleting object is let through so that finalizers can be removed whatever its spec says.
            if (!spec.Deleting && IsvcValidator.IsOurs(spec, options))
            {
                var rejected = IsvcValidator.Validate(spec, errors, options).Where(p => p.RejectAtAdmission).Select(p => p.Message).ToList();
                if (rejected.Count > 0)
                {
                    denial = string.Join("; ", rejected);
                }
            }
        }

        var response = new JsonObject { ["uid"] = uid, ["allowed"] = denial is null };
        if (denial is not null)
        {
            response["status"] = new JsonObject
            {
                ["status"] = "Failure",
                ["code"] = 400,
                ["reason"] = "Invalid",
                ["message"] = denial,
            };
        }

        return new JsonObject
        {
            ["apiVersion"] = apiVersion,
            ["kind"] = "AdmissionReview",
            ["response"] = response,
        };
    }

    /// <summary>Reads a request body as JSON; null when it is not JSON.</summary>
    public static async Task<JsonNode?> ReadBodyAsync(Stream body, CancellationToken ct)
    {
        try
        {
            return await JsonNode.ParseAsync(body, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>Maps the webhook endpoint.</summary>
internal static class AdmissionEndpoints
{
    public static IEndpointRouteBuilder MapAdmissionWebhook(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapPost(AdmissionReviewer.Path, async (HttpRequest request, IOptions<IsvcControllerOptions> options, CancellationToken ct) =>
        {
            var body = await AdmissionReviewer.ReadBodyAsync(request.Body, ct).ConfigureAwait(false);
            try
            {
                return Results.Json(AdmissionReviewer.Review(body, options.Value));
            }
            catch (FormatException e)
            {
                // A body that is not an AdmissionReview is the caller's error: a clear 400, never a 500.
                return Results.Problem(e.Message, statusCode: StatusCodes.Status400BadRequest);
            }
        });
        return endpoints;
    }
}
