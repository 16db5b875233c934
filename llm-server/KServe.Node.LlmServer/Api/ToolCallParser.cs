using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LlmServer.Api;

/// <summary>How a model writes tool calls (vLLM's <c>--tool-call-parser</c> names).</summary>
internal enum ToolCallFormat
{
    /// <summary>Hermes and Qwen: <c>&lt;tool_call&gt;{"name": .., "arguments": {..}}&lt;/tool_call&gt;</c>, one block per call.</summary>
    Hermes,

    /// <summary>Llama 3.x JSON tool calling: <c>{"name": .., "parameters": {..}}</c>, optionally after <c>&lt;|python_tag|&gt;</c>, several joined by <c>;</c>.</summary>
    Llama3Json,

    /// <summary>Mistral: <c>[TOOL_CALLS][{"name": .., "arguments": {..}}, ..]</c>, or the newer <c>[TOOL_CALLS]name[ARGS]{..}</c>.</summary>
    Mistral,
}

/// <summary>A tool call found in the output: the function name and its arguments as a JSON string.</summary>
internal sealed record ParsedToolCall(string Name, string Arguments);

/// <summary>The output split into content (the text before the calls, or null) and the calls.</summary>
internal sealed record ToolParseResult(string? Content, IReadOnlyList<ParsedToolCall> Calls);

/// <summary>
/// Finds tool calls in generated text, as vLLM's tool parsers do. Text that looks like a call but does not parse
/// (truncated, invalid JSON, no name) stays content: a malformed call is never an error.
/// </summary>
internal static class ToolCallParser
{
    public const string HermesStart = "<tool_call>";
    public const string HermesEnd = "</tool_call>";
    public const string PythonTag = "<|python_tag|>";
    public const string MistralStart = "[TOOL_CALLS]";
    public const string MistralArgs = "[ARGS]";

    /// <summary>The --tool-call-parser names.</summary>
    public static readonly IReadOnlyDictionary<string, ToolCallFormat> Names = new Dictionary<string, ToolCallFormat>(StringComparer.Ordinal)
    {
        ["hermes"] = ToolCallFormat.Hermes,
        ["llama3_json"] = ToolCallFormat.Llama3Json,
        ["mistral"] = ToolCallFormat.Mistral,
    };

    /// <summary>
    /// Picks the format from the chat template's text: the markers a template writes for tool calls name its family.
    /// A template with none of them (ChatML and friends) gets Hermes, the format most open models are trained on.
    /// </summary>
    public static ToolCallFormat Detect(string? template)
    {
        if (template is null)
        {
            return ToolCallFormat.Hermes;
        }
        if (template.Contains(HermesStart, StringComparison.Ordinal))
        {
            return ToolCallFormat.Hermes;
        }
        if (template.Contains(MistralStart, StringComparison.Ordinal))
        {
            return ToolCallFormat.Mistral;
        }
        if (template.Contains(PythonTag, StringComparison.Ordinal) || template.Contains("<|start_header_id|>", StringComparison.Ordinal))
        {
            return ToolCallFormat.Llama3Json;
        }
        return ToolCallFormat.Hermes;
    }

    public static string Name(ToolCallFormat format) => Names.First(kv => kv.Value == format).Key;

    /// <summary>A new call id: <c>call_</c> and 24 random characters, or the 9 alphanumerics Mistral templates insist on.</summary>
    public static string NewCallId(ToolCallFormat format)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        var length = format == ToolCallFormat.Mistral ? 9 : 24;
        var chars = new char[length];
        for (var i = 0; i < length; i++)
        {
            chars[i] = alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
        }
        return format == ToolCallFormat.Mistral ? new string(chars) : "call_" + new string(chars);
    }

    /// <summary>Where the calls start in <paramref name="text"/>, or -1: the point content streaming must not pass.</summary>
    public static int FindStart(ToolCallFormat format, string text)
    {
        switch (format)
        {
            case ToolCallFormat.Hermes:
                return text.IndexOf(HermesStart, StringComparison.Ordinal);
            case ToolCallFormat.Mistral:
                return MarkerOrLeading(text, MistralStart, '[');
            default:
                return MarkerOrLeading(text, PythonTag, '{');
        }
    }

    /// <summary>
    /// The marker's position, or the answer's first character when it opens the call syntax: Llama's JSON calls
    /// usually come without <c>&lt;|python_tag|&gt;</c>, and <c>[TOOL_CALLS]</c> is a control token that
    /// detokenizers skipping special tokens drop.
    /// </summary>
    private static int MarkerOrLeading(string text, string marker, char open)
    {
        var first = FirstNonSpace(text);
        if (first < text.Length && text[first] == open)
        {
            return first;
        }
        return text.IndexOf(marker, StringComparison.Ordinal);
    }

    /// <summary>The character a call may open the answer with when its marker is absent.</summary>
    public static char LeadingOpen(ToolCallFormat format) => format switch
    {
        ToolCallFormat.Mistral => '[',
        ToolCallFormat.Llama3Json => '{',
        _ => '\0',
    };

    /// <summary>
    /// How many characters at the end of <paramref name="text"/> could still become a call's start marker,
    /// so streaming holds them back as it holds back stop strings.
    /// </summary>
    public static int PendingSuffix(ToolCallFormat format, string text)
    {
        var marker = Marker(format);
        var hold = 0;
        for (var n = Math.Min(marker.Length - 1, text.Length); n > 0; n--)
        {
            if (text.AsSpan(text.Length - n).SequenceEqual(marker.AsSpan(0, n)))
            {
                hold = n;
                break;
            }
        }
        return hold;
    }

    public static ToolParseResult Parse(ToolCallFormat format, string text)
    {
        var start = FindStart(format, text);
        while (start >= 0)
        {
            if (ParseAt(format, text, start) is { Count: > 0 } calls)
            {
                var content = text[..start];
                return new ToolParseResult(string.IsNullOrWhiteSpace(content) ? null : content, calls);
            }
            // An answer that merely opens with a bracket may still hold a marked call further on.
            var marker = LeadingOpen(format) == '\0' ? -1 : text.IndexOf(Marker(format), start + 1, StringComparison.Ordinal);
            start = marker > start ? marker : -1;
        }
        return new ToolParseResult(text, []);
    }

    internal static string Marker(ToolCallFormat format) => format switch
    {
        ToolCallFormat.Hermes => HermesStart,
        ToolCallFormat.Mistral => MistralStart,
        _ => PythonTag,
    };

    private static List<ParsedToolCall>? ParseAt(ToolCallFormat format, string text, int start)
    {
        try
        {
            return format switch
            {
                ToolCallFormat.Hermes => ParseHermes(text, start),
                ToolCallFormat.Mistral => ParseMistral(text, string.CompareOrdinal(text, start, MistralStart, 0, MistralStart.Length) == 0 ? start + MistralStart.Length : start),
                _ => ParseLlama(text, start),
            };
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or JsonException or FormatException)
        {
            // JsonObject throws on a duplicate key when first read: such output is not a call.
            return null;
        }
    }

    private static List<ParsedToolCall>? ParseHermes(string text, int start)
    {
        var calls = new List<ParsedToolCall>();
        var pos = start;
        while (pos < text.Length)
        {
            if (string.CompareOrdinal(text, pos, HermesStart, 0, HermesStart.Length) != 0)
            {
                // Text between or after the blocks is dropped, as vLLM's Hermes parser does.
                pos = text.IndexOf(HermesStart, pos, StringComparison.Ordinal);
                if (pos < 0)
                {
                    break;
                }
            }
            pos += HermesStart.Length;
            var end = text.IndexOf(HermesEnd, pos, StringComparison.Ordinal);
            // An unclosed last block still counts when its JSON is complete (models often stop at the end token).
            var body = end < 0 ? text[pos..] : text[pos..end];
            if (ReadCall(body.Trim(), "arguments") is not { } call)
            {
                return null;
            }
            calls.Add(call);
            pos = end < 0 ? text.Length : end + HermesEnd.Length;
            pos = FirstNonSpace(text, pos);
        }
        return calls;
    }

    private static List<ParsedToolCall>? ParseLlama(string text, int start)
    {
        var pos = start;
        if (string.CompareOrdinal(text, pos, PythonTag, 0, PythonTag.Length) == 0)
        {
            pos += PythonTag.Length;
        }
        var bytes = Encoding.UTF8.GetBytes(text[pos..]);
        var calls = new List<ParsedToolCall>();
        var offset = 0;
        while (true)
        {
            offset = SkipSpace(bytes, offset);
            if (offset >= bytes.Length)
            {
                break;
            }
            if (ReadValue(bytes, ref offset) is not JsonObject obj || FromObject(obj, "parameters") is not { } call)
            {
                return null;
            }
            calls.Add(call);
            offset = SkipSpace(bytes, offset);
            if (offset < bytes.Length && bytes[offset] == (byte)';')
            {
                offset++;
            }
        }
        return calls;
    }

    private static List<ParsedToolCall>? ParseMistral(string text, int pos)
    {
        var rest = text[pos..].TrimStart();
        if (rest.StartsWith('['))
        {
            var bytes = Encoding.UTF8.GetBytes(rest);
            var offset = 0;
            if (ReadValue(bytes, ref offset) is not JsonArray array || SkipSpace(bytes, offset) != bytes.Length)
            {
                return null;
            }
            var calls = new List<ParsedToolCall>();
            foreach (var item in array)
            {
                if (item is not JsonObject obj || FromObject(obj, "arguments") is not { } call)
                {
                    return null;
                }
                calls.Add(call);
            }
            return calls;
        }
        // Newer Mistral templates: [TOOL_CALLS]name[ARGS]{...}, repeated for parallel calls.
        var result = new List<ParsedToolCall>();
        foreach (var segment in rest.Split(MistralStart))
        {
            var args = segment.IndexOf(MistralArgs, StringComparison.Ordinal);
            if (args <= 0)
            {
                return null;
            }
            var name = segment[..args].Trim();
            var json = segment[(args + MistralArgs.Length)..].Trim();
            if (!ToolRequests.IsValidName(name) || ParseObject(json) is not { } obj)
            {
                return null;
            }
            result.Add(new ParsedToolCall(name, obj.ToJsonString()));
        }
        return result;
    }

    private static ParsedToolCall? ReadCall(string json, string argumentsKey) =>
        ParseObject(json) is { } obj ? FromObject(obj, argumentsKey) : null;

    /// <summary>A call object: a string <c>name</c> and object arguments under the format's key (either key is accepted).</summary>
    private static ParsedToolCall? FromObject(JsonObject obj, string argumentsKey)
    {
        if (obj["name"] is not JsonValue nameValue || !nameValue.TryGetValue<string>(out var name) || name.Length == 0)
        {
            return null;
        }
        var other = argumentsKey == "arguments" ? "parameters" : "arguments";
        var args = obj.ContainsKey(argumentsKey) ? obj[argumentsKey] : obj[other];
        // Some models write the arguments as a JSON string; pass it on when it holds an object.
        if (args is JsonValue s && s.TryGetValue<string>(out var str))
        {
            args = ParseObject(str);
            if (args is null)
            {
                return null;
            }
        }
        return args switch
        {
            null => new ParsedToolCall(name, "{}"),
            JsonObject o => new ParsedToolCall(name, o.ToJsonString()),
            _ => null,
        };
    }

    private static JsonObject? ParseObject(string json)
    {
        try
        {
            return JsonNode.Parse(json) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Reads one JSON value at <paramref name="offset"/> and moves past it (Python's <c>raw_decode</c>).</summary>
    private static JsonNode? ReadValue(byte[] bytes, ref int offset)
    {
        try
        {
            var reader = new Utf8JsonReader(bytes.AsSpan(offset), new JsonReaderOptions { AllowMultipleValues = true });
            var node = JsonNode.Parse(ref reader);
            offset += (int)reader.BytesConsumed;
            return node;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static int SkipSpace(byte[] bytes, int offset)
    {
        while (offset < bytes.Length && bytes[offset] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
        {
            offset++;
        }
        return offset;
    }

    internal static int FirstNonSpace(string text, int from = 0)
    {
        var i = from;
        while (i < text.Length && char.IsWhiteSpace(text[i]))
        {
            i++;
        }
        return i;
    }
}
