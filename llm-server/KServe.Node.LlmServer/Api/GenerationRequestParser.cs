using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LlmServer.Api;

internal enum ResponseFormatKind
{
    Text,
    JsonObject,
    JsonSchema,
}

/// <summary>A chat message after validation: role, flattened text content, and the original object for the template.</summary>
internal sealed record ChatMessage(string Role, string? Content, JsonObject Raw);

/// <summary>One legacy completions prompt: text, or token ids (then <see cref="Text"/> is null).</summary>
internal sealed record PromptInput(string? Text, int[]? Tokens);

/// <summary>A validated chat or text completion request (fields common to both), independent of the engine.</summary>
internal sealed class ParsedRequest
{
    public required string Model { get; init; }
    public IReadOnlyList<ChatMessage>? Messages { get; init; }

    /// <summary>The messages as the chat template receives them, built once while parsing (each element is a message's <see cref="ChatMessage.Raw"/>).</summary>
    public JsonArray? TemplateMessages { get; init; }

    /// <summary>Legacy completions' prompts: one, or a batch whose choices are numbered prompt by prompt.</summary>
    public IReadOnlyList<PromptInput> Prompts { get; init; } = [];

    /// <summary>Legacy completions' <c>suffix</c>: the text after the insertion (fill-in-the-middle); null or empty = none.</summary>
    public string? Suffix { get; init; }

    /// <summary>OpenAI's <c>best_of</c> (default <see cref="N"/>): candidates generated per prompt, of which the <c>n</c> most likely are returned.</summary>
    public int BestOf { get; init; } = 1;
    public int? MaxTokens { get; init; }
    public float? Temperature { get; init; }
    public float? TopP { get; init; }
    public int? TopK { get; init; }
    public float? MinP { get; init; }
    public long? Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    public float PresencePenalty { get; init; }
    public float FrequencyPenalty { get; init; }
    public IReadOnlyDictionary<int, float> LogitBias { get; init; } = new Dictionary<int, float>();
    public int N { get; init; } = 1;
    public bool Logprobs { get; init; }
    public int TopLogprobs { get; init; }
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    public ResponseFormatKind ResponseFormat { get; init; }
    public JsonNode? JsonSchema { get; init; }
    public string? User { get; init; }
    public bool Echo { get; init; }

    /// <summary>llama-server's and vLLM's <c>ignore_eos</c>: keep generating past end-of-sequence (benchmarks use it for fixed output lengths).</summary>
    public bool IgnoreEos { get; init; }
    public JsonArray? Tools { get; init; }

    /// <summary>The validated function tools (empty without <c>tools</c>).</summary>
    public IReadOnlyList<ToolFunction> ToolFunctions { get; init; } = [];
    public ToolChoiceKind ToolChoice { get; init; }

    /// <summary>The function <c>tool_choice</c> names, when <see cref="ToolChoice"/> is <see cref="ToolChoiceKind.Named"/>.</summary>
    public string? ToolChoiceName { get; init; }

    /// <summary>OpenAI's <c>parallel_tool_calls</c> (default true): false allows at most one call.</summary>
    public bool ParallelToolCalls { get; init; } = true;

    /// <summary>vLLM's <c>repetition_penalty</c> (llama-server's <c>repeat_penalty</c>); 1 = off.</summary>
    public float RepetitionPenalty { get; init; } = 1;

    /// <summary>llama-server's <c>typical_p</c>; 1 = off.</summary>
    public float TypicalP { get; init; } = 1;

    /// <summary>vLLM's <c>min_tokens</c>: no end-of-generation or stop token before this many tokens.</summary>
    public int MinTokens { get; init; }

    /// <summary>vLLM's <c>stop_token_ids</c>.</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>vLLM's <c>stream_options.continuous_usage_stats</c>: usage on every chunk.</summary>
    public bool ContinuousUsage { get; init; }

    /// <summary>Top-level fields the server does not know (ignored, as vLLM does).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];

    /// <summary>vLLM's <c>add_generation_prompt</c> (default true): open the assistant turn after the messages.</summary>
    public bool AddGenerationPrompt { get; init; } = true;

    /// <summary>vLLM's <c>continue_final_message</c>: the final message stays open and the answer continues it.</summary>
    public bool ContinueFinalMessage { get; init; }

    /// <summary>vLLM's <c>include_reasoning</c> (default true): false leaves the reasoning out of the answer.</summary>
    public bool IncludeReasoning { get; init; } = true;

    /// <summary>vLLM's <c>chat_template_kwargs</c>: extra template variables such as <c>enable_thinking</c>.</summary>
    public JsonObject? ChatTemplateKwargs { get; init; }
}

/// <summary>
/// Validates OpenAI request bodies field by field so that every problem is a 400 naming its <c>param</c>.
/// Unknown fields are ignored, as OpenAI does.
/// </summary>
internal static class GenerationRequestParser
{
    public const int MaxN = 16;
    public const int MaxStop = 16;

    public static JsonDocument ParseBody(ReadOnlyMemory<byte> body)
    {
        if (body.Length == 0)
        {
            throw ApiException.InvalidJson("the body is empty");
        }
        // JsonDocument checks UTF-8 only when a string is read; reject it up front so no later read can throw.
        if (!System.Text.Unicode.Utf8.IsValid(body.Span))
        {
            throw ApiException.InvalidJson("the body is not valid UTF-8");
        }
        try
        {
            // Duplicate keys are refused: the mutable copies made for the chat template cannot hold them.
            var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64, AllowDuplicateProperties = false });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw ApiException.InvalidJson("the body must be a JSON object");
            }
            return doc;
        }
        catch (JsonException e)
        {
            throw ApiException.InvalidJson(e.Message);
        }
        catch (ArgumentException e)
        {
            // Invalid UTF-8 surfaces as ArgumentException in some paths.
            throw ApiException.InvalidJson(e.Message);
        }
    }

    /// <summary>
    /// Fields read by the parser or deliberately accepted without effect (OpenAI's tracking and storage fields,
    /// the service tier). Anything else is ignored with a debug line, as vLLM does.
    /// </summary>
    private static readonly HashSet<string> KnownFields = new(StringComparer.Ordinal)
    {
        "model", "messages", "prompt", "max_tokens", "max_completion_tokens", "n", "logprobs", "top_logprobs", "stream", "stream_options",
        "response_format", "tools", "tool_choice", "parallel_tool_calls", "temperature", "top_p", "top_k", "min_p", "seed", "stop",
        "presence_penalty", "frequency_penalty", "logit_bias", "user", "echo", "ignore_eos", "best_of", "suffix", "repetition_penalty",
        "repeat_penalty", "typical_p", "min_tokens", "stop_token_ids", "add_generation_prompt", "continue_final_message",
        "chat_template_kwargs", "include_reasoning", "metadata", "store", "service_tier",
    };

    public static ParsedRequest ParseChat(JsonElement root) => Parse(root, chat: true);

    public static ParsedRequest ParseCompletion(JsonElement root) => Parse(root, chat: false);

    private static ParsedRequest Parse(JsonElement root, bool chat)
    {
        var model = OptionalString(root, "model") ?? "";
        var messages = chat ? ParseMessages(root) : null;
        IReadOnlyList<PromptInput> prompts = chat ? [] : ParsePrompts(root);
        // Legacy completions take max_tokens 0: with echo and logprobs that scores the prompt (lm-evaluation-harness's loglikelihood).
        var minTokens = chat ? 1 : 0;
        var maxTokens = OptionalInt(root, "max_completion_tokens", minTokens, int.MaxValue) ?? OptionalInt(root, "max_tokens", minTokens, int.MaxValue);
        var n = OptionalInt(root, "n", 1, MaxN) ?? 1;
        var (logprobs, topLogprobs) = ParseLogprobs(root, chat);
        var stream = OptionalBool(root, "stream") ?? false;
        var includeUsage = false;
        var continuousUsage = false;
        if (root.TryGetProperty("stream_options", out var so) && so.ValueKind != JsonValueKind.Null)
        {
            if (so.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.WrongType("stream_options", "an object");
            }
            includeUsage = OptionalBool(so, "include_usage", "stream_options.include_usage") ?? false;
            continuousUsage = OptionalBool(so, "continuous_usage_stats", "stream_options.continuous_usage_stats") ?? false;
        }
        var bestOf = OptionalInt(root, "best_of", 1, MaxN) ?? n;
        if (bestOf < n)
        {
            throw ApiException.Invalid("best_of", $"'best_of' ({bestOf}) must be at least 'n' ({n}).");
        }
        if (bestOf > n && stream)
        {
            // OpenAI's rule: the best candidates are known only once all of them ended.
            throw ApiException.Invalid("best_of", "'best_of' greater than 'n' cannot be streamed.");
        }
        var suffix = chat ? null : OptionalString(root, "suffix");
        if (!string.IsNullOrEmpty(suffix) && (OptionalBool(root, "echo") ?? false))
        {
            throw ApiException.Invalid("suffix", "'suffix' cannot be combined with 'echo'.");
        }
        var repetition = OptionalFloat(root, "repetition_penalty", 0.01, 100);
        var repeat = OptionalFloat(root, "repeat_penalty", 0.01, 100);
        var (format, schema) = ParseResponseFormat(root);
        JsonArray? tools = null;
        IReadOnlyList<ToolFunction> functions = [];
        // Tools belong to chat; the legacy completions route ignores the field, as vLLM's does.
        var toolsGiven = root.TryGetProperty("tools", out var t) && t.ValueKind != JsonValueKind.Null && chat;
        if (toolsGiven)
        {
            functions = ToolRequests.ParseTools(t);
            tools = JsonNode.Parse(t.GetRawText()) as JsonArray;
        }
        var (toolChoice, toolChoiceName) = chat ? ToolRequests.ParseToolChoice(root, functions, toolsGiven) : (ToolChoiceKind.None, null);
        if (toolChoice is ToolChoiceKind.Required or ToolChoiceKind.Named && format != ResponseFormatKind.Text)
        {
            // Both would constrain the same output with different grammars.
            throw ApiException.Invalid("response_format", "'response_format' json_object or json_schema cannot be combined with 'tool_choice' 'required' or a named function.");
        }
        var addGenerationPrompt = (chat ? OptionalBool(root, "add_generation_prompt") : null) ?? true;
        var continueFinal = chat && (OptionalBool(root, "continue_final_message") ?? false);
        if (continueFinal && addGenerationPrompt && root.TryGetProperty("add_generation_prompt", out _))
        {
            throw ApiException.Invalid("continue_final_message", "'continue_final_message' and 'add_generation_prompt' cannot both be true.");
        }
        return new ParsedRequest
        {
            Model = model,
            AddGenerationPrompt = addGenerationPrompt && !continueFinal,
            ContinueFinalMessage = continueFinal,
            ChatTemplateKwargs = chat ? ParseTemplateKwargs(root) : null,
            IncludeReasoning = !chat || (OptionalBool(root, "include_reasoning") ?? true),
            Messages = messages,
            TemplateMessages = messages is null ? null : new JsonArray([.. messages.Select(m => (JsonNode)m.Raw)]),
            Prompts = prompts,
            Suffix = string.IsNullOrEmpty(suffix) ? null : suffix,
            BestOf = bestOf,
            MaxTokens = maxTokens,
            Temperature = OptionalFloat(root, "temperature", 0, 2),
            TopP = OptionalFloat(root, "top_p", 0, 1),
            TopK = OptionalInt(root, "top_k", -1, int.MaxValue),
            MinP = OptionalFloat(root, "min_p", 0, 1),
            Seed = OptionalLong(root, "seed"),
            Stop = ParseStop(root),
            PresencePenalty = OptionalFloat(root, "presence_penalty", -2, 2) ?? 0,
            FrequencyPenalty = OptionalFloat(root, "frequency_penalty", -2, 2) ?? 0,
            LogitBias = ParseLogitBias(root),
            N = n,
            Logprobs = logprobs,
            TopLogprobs = topLogprobs,
            Stream = stream,
            IncludeUsage = includeUsage,
            ResponseFormat = format,
            JsonSchema = schema,
            User = OptionalString(root, "user"),
            Echo = !chat && (OptionalBool(root, "echo") ?? false),
            IgnoreEos = OptionalBool(root, "ignore_eos") ?? false,
            Tools = tools,
            ToolFunctions = functions,
            ToolChoice = toolChoice,
            ToolChoiceName = toolChoiceName,
            ParallelToolCalls = OptionalBool(root, "parallel_tool_calls") ?? true,
            RepetitionPenalty = repetition ?? repeat ?? 1,
            TypicalP = OptionalFloat(root, "typical_p", 0.000001, 1) ?? 1,
            MinTokens = OptionalInt(root, "min_tokens", 0, int.MaxValue) ?? 0,
            StopTokenIds = ParseTokenIds(root, "stop_token_ids"),
            ContinuousUsage = continuousUsage,
            UnknownFields = [.. root.EnumerateObject().Select(f => f.Name).Where(f => !KnownFields.Contains(f)).Select(Truncate)],
        };
    }

    private static List<ChatMessage> ParseMessages(JsonElement root)
    {
        if (!root.TryGetProperty("messages", out var m) || m.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.Missing("messages");
        }
        if (m.ValueKind != JsonValueKind.Array)
        {
            throw ApiException.WrongType("messages", "an array of messages");
        }
        if (m.GetArrayLength() == 0)
        {
            throw ApiException.Invalid("messages", "'messages' must contain at least one message.");
        }
        var result = new List<ChatMessage>();
        var i = 0;
        foreach (var msg in m.EnumerateArray())
        {
            var p = $"messages[{i}]";
            if (msg.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.WrongType(p, "an object");
            }
            if (!msg.TryGetProperty("role", out var role) || role.ValueKind == JsonValueKind.Null)
            {
                throw ApiException.Missing(p + ".role");
            }
            if (role.ValueKind != JsonValueKind.String)
            {
                throw ApiException.WrongType(p + ".role", "a string");
            }
            var roleName = role.GetString()!;
            if (roleName is not ("system" or "user" or "assistant" or "tool" or "developer" or "function"))
            {
                throw ApiException.Invalid(p + ".role", $"Invalid value for '{p}.role': '{roleName}'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.");
            }
            string? content = null;
            if (msg.TryGetProperty("content", out var c))
            {
                content = c.ValueKind switch
                {
                    JsonValueKind.String => c.GetString(),
                    JsonValueKind.Null => null,
                    JsonValueKind.Array => FlattenParts(c, p + ".content"),
                    _ => throw ApiException.WrongType(p + ".content", "a string or an array of content parts"),
                };
            }
            else if (roleName is not "assistant")
            {
                throw ApiException.Missing(p + ".content");
            }
            var raw = (JsonObject)JsonNode.Parse(msg.GetRawText())!;
            raw["role"] = roleName == "developer" ? "system" : roleName;
            raw["content"] = content;
            if (roleName == "assistant")
            {
                ToolRequests.NormalizeToolCalls(msg, raw, p);
            }
            else if (roleName == "tool")
            {
                ToolRequests.CheckToolMessage(msg, p);
            }
            result.Add(new ChatMessage(roleName == "developer" ? "system" : roleName, content, raw));
            i++;
        }
        return result;
    }

    private static string FlattenParts(JsonElement parts, string param)
    {
        var texts = new List<string>();
        var j = 0;
        foreach (var part in parts.EnumerateArray())
        {
            var p = $"{param}[{j}]";
            if (part.ValueKind == JsonValueKind.String)
            {
                texts.Add(part.GetString()!);
            }
            else if (part.ValueKind == JsonValueKind.Object)
            {
                var type = part.TryGetProperty("type", out var ty) && ty.ValueKind == JsonValueKind.String ? ty.GetString() : null;
                if (type is null)
                {
                    throw ApiException.Missing(p + ".type");
                }
                if (type != "text")
                {
                    throw ApiException.Invalid(p + ".type", $"Content part type '{type}' is not supported by this model; only 'text' parts are.");
                }
                if (!part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                {
                    throw ApiException.WrongType(p + ".text", "a string");
                }
                texts.Add(text.GetString()!);
            }
            else
            {
                throw ApiException.WrongType(p, "a content part object");
            }
            j++;
        }
        return string.Join("\n", texts);
    }

    /// <summary>A prompt string, or token ids (OpenAI: an array of integers, or a list holding one such array).</summary>
    /// <summary>Most prompts in one legacy completions batch.</summary>
    public const int MaxPrompts = 64;

    /// <summary>Legacy completions' <c>prompt</c>: a string, token ids, or a batch of either (a list of strings or of token lists).</summary>
    private static List<PromptInput> ParsePrompts(JsonElement root)
    {
        const string Expected = "a string, an array of token ids, or a list of strings or of token id arrays";
        if (!root.TryGetProperty("prompt", out var p) || p.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.Missing("prompt");
        }
        if (p.ValueKind == JsonValueKind.String)
        {
            return [new PromptInput(p.GetString()!, null)];
        }
        if (p.ValueKind != JsonValueKind.Array || p.GetArrayLength() == 0)
        {
            throw ApiException.WrongType("prompt", Expected);
        }
        if (p[0].ValueKind == JsonValueKind.Number)
        {
            return [new PromptInput(null, ReadTokenIds(p, "prompt"))];
        }
        if (p.GetArrayLength() > MaxPrompts)
        {
            throw ApiException.Invalid("prompt", $"A batch holds at most {MaxPrompts} prompts; this one has {p.GetArrayLength()}.");
        }
        var kind = p[0].ValueKind;
        return [.. p.EnumerateArray().Select(e => e.ValueKind == kind ? kind switch
            {
                JsonValueKind.String => new PromptInput(e.GetString()!, null),
                JsonValueKind.Array => new PromptInput(null, ReadTokenIds(e, "prompt")),
                _ => throw ApiException.WrongType("prompt", Expected),
            }
            : throw ApiException.WrongType("prompt", Expected + " (not mixed)"))];
    }

    /// <summary>Refuses (400 naming <paramref name="param"/>) a token id outside the model's vocabulary.</summary>
    public static void CheckVocabulary(int vocabSize, IEnumerable<int> tokens, string param)
    {
        foreach (var t in tokens.Where(t => t < 0 || t >= vocabSize))
        {
            throw ApiException.Invalid(param, $"Token id {t} in '{param}' is outside the vocabulary (size {vocabSize}).");
        }
    }

    private static int[] ReadTokenIds(JsonElement array, string param)
    {
        if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
        {
            throw ApiException.WrongType(param, "a non-empty array of token ids");
        }
        return array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var t) && t >= 0
            ? t : throw ApiException.WrongType(param, "an array of non-negative token ids")).ToArray();
    }

    private static List<int> ParseTokenIds(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null || (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0))
        {
            return [];
        }
        return [.. ReadTokenIds(v, name)];
    }

    private static (bool, int) ParseLogprobs(JsonElement root, bool chat)
    {
        if (chat)
        {
            var lp = OptionalBool(root, "logprobs") ?? false;
            var top = OptionalInt(root, "top_logprobs", 0, 20) ?? 0;
            if (top > 0 && !lp)
            {
                throw ApiException.Invalid("top_logprobs", "'top_logprobs' requires 'logprobs' to be true.");
            }
            return (lp, top);
        }
        // Legacy completions: logprobs is an integer count of alternatives.
        var count = OptionalInt(root, "logprobs", 0, 5);
        return (count is not null, count ?? 0);
    }

    private static List<string> ParseStop(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var s) || s.ValueKind == JsonValueKind.Null)
        {
            return [];
        }
        if (s.ValueKind == JsonValueKind.String)
        {
            return s.GetString()!.Length == 0 ? [] : [s.GetString()!];
        }
        if (s.ValueKind != JsonValueKind.Array)
        {
            throw ApiException.WrongType("stop", "a string or an array of strings");
        }
        if (s.GetArrayLength() > MaxStop)
        {
            throw ApiException.Invalid("stop", $"'stop' may hold at most {MaxStop} sequences.");
        }
        var list = new List<string>();
        foreach (var item in s.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                throw ApiException.WrongType("stop", "a string or an array of strings");
            }
            if (item.GetString()!.Length > 0)
            {
                list.Add(item.GetString()!);
            }
        }
        return list;
    }

    private static Dictionary<int, float> ParseLogitBias(JsonElement root)
    {
        var result = new Dictionary<int, float>();
        if (!root.TryGetProperty("logit_bias", out var lb) || lb.ValueKind == JsonValueKind.Null)
        {
            return result;
        }
        if (lb.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.WrongType("logit_bias", "an object mapping token ids to biases");
        }
        foreach (var p in lb.EnumerateObject())
        {
            if (!int.TryParse(p.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var token))
            {
                throw ApiException.Invalid("logit_bias", $"Invalid key in 'logit_bias': '{Truncate(p.Name)}' is not a token id.");
            }
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out var bias) || bias < -100 || bias > 100)
            {
                throw ApiException.Invalid("logit_bias", $"Invalid value in 'logit_bias' for token {token}: expected a number from -100 to 100.");
            }
            result[token] = (float)bias;
        }
        return result;
    }

    private static (ResponseFormatKind, JsonNode?) ParseResponseFormat(JsonElement root)
    {
        if (!root.TryGetProperty("response_format", out var rf) || rf.ValueKind == JsonValueKind.Null)
        {
            return (ResponseFormatKind.Text, null);
        }
        if (rf.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.WrongType("response_format", "an object");
        }
        var type = OptionalString(rf, "type", "response_format.type") ?? throw ApiException.Missing("response_format.type");
        switch (type)
        {
            case "text":
                return (ResponseFormatKind.Text, null);
            case "json_object":
                return (ResponseFormatKind.JsonObject, null);
            case "json_schema":
                {
                    if (!rf.TryGetProperty("json_schema", out var js) || js.ValueKind != JsonValueKind.Object)
                    {
                        throw ApiException.Missing("response_format.json_schema");
                    }
                    if (!js.TryGetProperty("schema", out var schema) || schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True))
                    {
                        throw ApiException.Missing("response_format.json_schema.schema");
                    }
                    return (ResponseFormatKind.JsonSchema, JsonNode.Parse(schema.GetRawText()));
                }
            default:
                throw ApiException.Invalid("response_format.type", $"Invalid value for 'response_format.type': '{Truncate(type)}'. Supported values are: 'text', 'json_object' and 'json_schema'.");
        }
    }

    /// <summary>Names the template receives from the request itself; kwargs may not replace them.</summary>
    private static readonly string[] ReservedTemplateVariables = ["messages", "tools", "add_generation_prompt", "continue_final_message", "bos_token", "eos_token"];

    private static JsonObject? ParseTemplateKwargs(JsonElement root)
    {
        if (!root.TryGetProperty("chat_template_kwargs", out var k) || k.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (k.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.WrongType("chat_template_kwargs", "an object");
        }
        foreach (var p in k.EnumerateObject())
        {
            if (ReservedTemplateVariables.Contains(p.Name, StringComparer.Ordinal))
            {
                throw ApiException.Invalid("chat_template_kwargs", $"'chat_template_kwargs' cannot set '{p.Name}'; use the request field instead.");
            }
        }
        return JsonNode.Parse(k.GetRawText()) as JsonObject;
    }

    internal static string Truncate(string s) => s.Length > 64 ? s[..64] + "…" : s;

    private static string? OptionalString(JsonElement obj, string name, string? param = null)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw ApiException.WrongType(param ?? name, "a string");
    }

    private static bool? OptionalBool(JsonElement obj, string name, string? param = null)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.WrongType(param ?? name, "a boolean"),
        };
    }

    private static int? OptionalInt(JsonElement obj, string name, int min, int max)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || Math.Floor(d) != d)
        {
            throw ApiException.WrongType(name, "an integer");
        }
        if (d < min || d > max)
        {
            throw ApiException.Invalid(name, $"Invalid value for '{name}': {d.ToString(CultureInfo.InvariantCulture)} is outside [{min}, {max}].");
        }
        return (int)d;
    }

    private static long? OptionalLong(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) ? l : throw ApiException.WrongType(name, "an integer");
    }

    private static float? OptionalFloat(JsonElement obj, string name, double min, double max)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d))
        {
            throw ApiException.WrongType(name, "a number");
        }
        if (d < min || d > max)
        {
            throw ApiException.Invalid(name, $"Invalid value for '{name}': {d.ToString(CultureInfo.InvariantCulture)} is outside [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}].");
        }
        return (float)d;
    }
}
