using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace KServe.Node.LlmServer.Api;

internal sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens, PromptTokensDetails? PromptTokensDetails);

internal sealed record PromptTokensDetails(int CachedTokens);

internal sealed record TopLogprob(string Token, float Logprob, int[] Bytes);

internal sealed record TokenLogprob(string Token, float Logprob, int[] Bytes, TopLogprob[] TopLogprobs);

internal sealed record ChoiceLogprobs(TokenLogprob[] Content);

internal sealed record AssistantMessage(
    string Role,
    string? Content,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ToolCall[]? ToolCalls = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ReasoningContent = null);

internal sealed record FunctionCall(string Name, string Arguments);

internal sealed record ToolCall(string Id, string Type, FunctionCall Function);

/// <summary>A streamed piece of a tool call: the first carries id, type and name; later ones add to the arguments.</summary>
internal sealed record ToolCallDelta(
    int Index,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Id,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Type,
    FunctionCallDelta Function);

internal sealed record FunctionCallDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Arguments);

internal sealed record ChatChoice(int Index, AssistantMessage Message, ChoiceLogprobs? Logprobs, string? FinishReason);

internal sealed record ChatCompletion(string Id, string Object, long Created, string Model, string SystemFingerprint, ChatChoice[] Choices, Usage Usage);

internal sealed record ChatDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ToolCallDelta[]? ToolCalls = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ReasoningContent = null);

internal sealed record ChatChunkChoice(int Index, ChatDelta Delta, ChoiceLogprobs? Logprobs, string? FinishReason);

internal sealed record ChatCompletionChunk(string Id, string Object, long Created, string Model, string SystemFingerprint, ChatChunkChoice[] Choices, Usage? Usage);

/// <summary>The legacy completions logprobs shape.</summary>
/// <summary>Legacy logprobs; with <c>echo</c> the prompt's tokens come first, the very first with null (nothing predicts it).</summary>
internal sealed record LegacyLogprobs(string[] Tokens, float?[] TokenLogprobs, Dictionary<string, float>?[] TopLogprobs, int[] TextOffset);

internal sealed record CompletionChoice(int Index, string Text, LegacyLogprobs? Logprobs, string? FinishReason);

internal sealed record TextCompletion(string Id, string Object, long Created, string Model, string SystemFingerprint, CompletionChoice[] Choices, Usage? Usage);

/// <summary>One model, carrying OpenAI's fields and KServe v1's (<c>name</c>, <c>ready</c>).</summary>
internal sealed record ModelCard(string Id, string Object, long Created, string OwnedBy, string Name, bool Ready, int MaxModelLen);

internal sealed record ModelList(string Object, ModelCard[] Data);

internal sealed record EmbeddingItem(string Object, int Index, float[] Embedding);

internal sealed record EmbeddingUsage(int PromptTokens, int TotalTokens);

internal sealed record EmbeddingList(string Object, EmbeddingItem[] Data, string Model, EmbeddingUsage Usage);

/// <summary>An embedding as OpenAI's <c>encoding_format: base64</c> sends it: the little-endian float32 bytes, base64.</summary>
internal sealed record EmbeddingItemBase64(string Object, int Index, string Embedding);

internal sealed record EmbeddingListBase64(string Object, EmbeddingItemBase64[] Data, string Model, EmbeddingUsage Usage);

internal sealed record TokenizeResponse(int[] Tokens);

internal sealed record DetokenizeResponse(string Content);

internal sealed record ApplyTemplateResponse(string Prompt);

internal sealed record LiveResponse(bool Live);

internal sealed record ReadyResponse(bool Ready);

internal sealed record ModelReadyResponse(string Name, bool Ready);

internal sealed record HealthResponse(string Status);

internal sealed record StreamError(ErrorDetail Error);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = false)]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(StreamError))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(TextCompletion))]
[JsonSerializable(typeof(ModelCard))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(EmbeddingList))]
[JsonSerializable(typeof(EmbeddingListBase64))]
[JsonSerializable(typeof(TokenizeResponse))]
[JsonSerializable(typeof(DetokenizeResponse))]
[JsonSerializable(typeof(ApplyTemplateResponse))]
[JsonSerializable(typeof(LiveResponse))]
[JsonSerializable(typeof(ReadyResponse))]
[JsonSerializable(typeof(ModelReadyResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(JsonElement))]
internal sealed partial class ApiJsonContext : JsonSerializerContext
{
    /// <summary>
    /// The context used for answers: non-ASCII text is written as UTF-8 rather than \u escapes, as OpenAI does
    /// (the answers are JSON for API clients, never embedded in HTML).
    /// </summary>
    public static ApiJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
