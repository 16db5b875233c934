using System.Text.Json.Serialization;

namespace KServe.Node.LlmServer.Api;

/// <summary>The OpenAI error body: <c>{"error":{"message","type","param","code"}}</c>.</summary>
internal sealed record ErrorBody([property: JsonPropertyName("error")] ErrorDetail Error);

internal sealed record ErrorDetail(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code);

/// <summary>A request that fails with an OpenAI-shaped error and an HTTP status.</summary>
internal sealed class ApiException(int status, string message, string type, string? param = null, string? code = null) : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public int? RetryAfterSeconds { get; init; }

    public ErrorBody ToBody() => new(new ErrorDetail(Message, Type, Param, Code));

    public static ApiException InvalidJson(string detail) =>
        new(400, $"We could not parse the JSON body of your request: {detail}", "invalid_request_error");

    public static ApiException Missing(string param) =>
        new(400, $"Missing required parameter: '{param}'.", "invalid_request_error", param, "missing_required_parameter");

    public static ApiException Invalid(string param, string message) =>
        new(400, message, "invalid_request_error", param, "invalid_value");

    public static ApiException WrongType(string param, string expected) =>
        new(400, $"Invalid type for '{param}': expected {expected}.", "invalid_request_error", param, "invalid_type");

    public static ApiException ModelNotFound(string model) =>
        new(404, $"The model `{model}` does not exist or you do not have access to it.", "invalid_request_error", "model", "model_not_found");

    public static ApiException ContextExceeded(int contextLength, int promptTokens, int completionTokens) =>
        new(400, $"This model's maximum context length is {contextLength} tokens. However, you requested {promptTokens + completionTokens} tokens "
            + $"({promptTokens} in the messages, {completionTokens} in the completion). Please reduce the length of the messages or completion.",
            "invalid_request_error", "messages", "context_length_exceeded");

    public static ApiException NotReady() =>
        new(503, "The model is loading; try again shortly.", "server_error", null, "model_not_ready") { RetryAfterSeconds = 1 };

    public static ApiException QueueFull(int retryAfter) =>
        new(429, "The server is busy: the request queue is full. Retry after a moment.", "rate_limit_error", null, "queue_full") { RetryAfterSeconds = retryAfter };

    public static ApiException Unauthorized() =>
        new(401, "Incorrect API key provided.", "authentication_error", null, "invalid_api_key");

    public static ApiException NotFound(string path) =>
        new(404, $"Unknown route: {path}", "invalid_request_error", null, "not_found");

    public static ApiException TooLarge(long limit) =>
        new(413, $"The request body is larger than the limit of {limit} bytes.", "invalid_request_error", null, "request_too_large");
}
