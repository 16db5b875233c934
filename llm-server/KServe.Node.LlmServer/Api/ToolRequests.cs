using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LlmServer.Api;

/// <summary>OpenAI's <c>tool_choice</c>.</summary>
internal enum ToolChoiceKind
{
    /// <summary>No tool calls: tools are still rendered into the prompt (vLLM's default), the output is plain content.</summary>
    None,

    /// <summary>The model decides; tool calls found in the output are returned as <c>tool_calls</c>.</summary>
    Auto,

    /// <summary>At least one call to any tool, enforced by a grammar.</summary>
    Required,

    /// <summary>Exactly one call to the named tool, enforced by a grammar.</summary>
    Named,
}

/// <summary>One validated function tool.</summary>
internal sealed record ToolFunction(string Name, string? Description, JsonNode? Parameters);

/// <summary>
/// Validation of <c>tools</c>, <c>tool_choice</c>, <c>parallel_tool_calls</c> and of the tool parts of the
/// conversation (assistant <c>tool_calls</c>, <c>tool</c> messages), with errors naming the field.
/// </summary>
internal static class ToolRequests
{
    /// <summary>OpenAI limits a request to 128 tools.</summary>
    public const int MaxTools = 128;

    /// <summary>
    /// OpenAI's rule for function names (letters, digits, underscores and dashes, up to 64), with dots and colons
    /// also allowed because MCP-style clients use them for namespaced tools.
    /// </summary>
    public static bool IsValidName(string name)
    {
        if (name.Length is 0 or > 64)
        {
            return false;
        }
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or ':'))
            {
                return false;
            }
        }
        return true;
    }

    public static List<ToolFunction> ParseTools(JsonElement tools)
    {
        if (tools.ValueKind != JsonValueKind.Array)
        {
            throw ApiException.WrongType("tools", "an array of tools");
        }
        if (tools.GetArrayLength() > MaxTools)
        {
            throw ApiException.Invalid("tools", $"'tools' may hold at most {MaxTools} tools.");
        }
        var result = new List<ToolFunction>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var p = $"tools[{i}]";
            if (tool.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.WrongType(p, "a tool object");
            }
            if (tool.TryGetProperty("type", out var type) && type.ValueKind != JsonValueKind.Null)
            {
                if (type.ValueKind != JsonValueKind.String)
                {
                    throw ApiException.WrongType(p + ".type", "a string");
                }
                if (type.GetString() != "function")
                {
                    throw ApiException.Invalid(p + ".type", $"Invalid value for '{p}.type': '{GenerationRequestParser.Truncate(type.GetString()!)}'. Only 'function' tools are supported.");
                }
            }
            else
            {
                throw ApiException.Missing(p + ".type");
            }
            if (!tool.TryGetProperty("function", out var fn) || fn.ValueKind == JsonValueKind.Null)
            {
                throw ApiException.Missing(p + ".function");
            }
            if (fn.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.WrongType(p + ".function", "an object");
            }
            var name = RequiredString(fn, "name", p + ".function.name");
            if (!IsValidName(name))
            {
                throw ApiException.Invalid(p + ".function.name", $"Invalid '{p}.function.name': '{GenerationRequestParser.Truncate(name)}'. "
                    + "A function name is 1 to 64 characters: letters, digits, '_', '-', '.' or ':'.");
            }
            if (!names.Add(name))
            {
                throw ApiException.Invalid(p + ".function.name", $"Duplicate function name '{name}' in 'tools': each tool needs a distinct name.");
            }
            string? description = null;
            if (fn.TryGetProperty("description", out var d) && d.ValueKind != JsonValueKind.Null)
            {
                description = d.ValueKind == JsonValueKind.String ? d.GetString() : throw ApiException.WrongType(p + ".function.description", "a string");
            }
            JsonNode? parameters = null;
            if (fn.TryGetProperty("parameters", out var ps) && ps.ValueKind != JsonValueKind.Null)
            {
                if (ps.ValueKind is not (JsonValueKind.Object or JsonValueKind.True))
                {
                    throw ApiException.WrongType(p + ".function.parameters", "a JSON schema object");
                }
                parameters = JsonNode.Parse(ps.GetRawText());
            }
            if (fn.TryGetProperty("strict", out var strict) && strict.ValueKind is not (JsonValueKind.Null or JsonValueKind.True or JsonValueKind.False))
            {
                throw ApiException.WrongType(p + ".function.strict", "a boolean");
            }
            result.Add(new ToolFunction(name, description, parameters));
            i++;
        }
        return result;
    }

    /// <summary>Parses <c>tool_choice</c>; the default is <c>auto</c> with tools and <c>none</c> without, as OpenAI does.</summary>
    public static (ToolChoiceKind Kind, string? Name) ParseToolChoice(JsonElement root, IReadOnlyList<ToolFunction> tools, bool toolsGiven)
    {
        if (!root.TryGetProperty("tool_choice", out var tc) || tc.ValueKind == JsonValueKind.Null)
        {
            return (tools.Count > 0 ? ToolChoiceKind.Auto : ToolChoiceKind.None, null);
        }
        ToolChoiceKind kind;
        string? name = null;
        if (tc.ValueKind == JsonValueKind.String)
        {
            kind = tc.GetString() switch
            {
                "none" => ToolChoiceKind.None,
                "auto" => ToolChoiceKind.Auto,
                "required" => ToolChoiceKind.Required,
                var other => throw ApiException.Invalid("tool_choice", $"Invalid value for 'tool_choice': '{GenerationRequestParser.Truncate(other!)}'. "
                    + "Supported values are: 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": \"...\"}}."),
            };
        }
        else if (tc.ValueKind == JsonValueKind.Object)
        {
            if (!tc.TryGetProperty("type", out var type) || type.ValueKind == JsonValueKind.Null)
            {
                throw ApiException.Missing("tool_choice.type");
            }
            if (type.ValueKind != JsonValueKind.String || type.GetString() != "function")
            {
                throw ApiException.Invalid("tool_choice.type", "Invalid value for 'tool_choice.type': only 'function' is supported.");
            }
            if (!tc.TryGetProperty("function", out var fn) || fn.ValueKind == JsonValueKind.Null)
            {
                throw ApiException.Missing("tool_choice.function");
            }
            if (fn.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.WrongType("tool_choice.function", "an object");
            }
            name = RequiredString(fn, "name", "tool_choice.function.name");
            kind = ToolChoiceKind.Named;
        }
        else
        {
            throw ApiException.WrongType("tool_choice", "a string or an object");
        }
        if (kind != ToolChoiceKind.None && !toolsGiven)
        {
            throw ApiException.Invalid("tool_choice", "When using 'tool_choice', 'tools' must be set.");
        }
        if (kind is ToolChoiceKind.Required or ToolChoiceKind.Named && tools.Count == 0)
        {
            throw ApiException.Invalid("tool_choice", $"'tool_choice' '{(kind == ToolChoiceKind.Named ? name : "required")}' needs at least one tool in 'tools'.");
        }
        if (kind == ToolChoiceKind.Named && !tools.Any(t => t.Name == name))
        {
            throw ApiException.Invalid("tool_choice.function.name", $"Tool '{GenerationRequestParser.Truncate(name!)}' named in 'tool_choice' is not in 'tools'.");
        }
        return (kind, name);
    }

    /// <summary>
    /// Checks an assistant message's <c>tool_calls</c> and, as vLLM does for HF templates, turns each call's
    /// <c>function.arguments</c> JSON string into an object in the template's copy of the message.
    /// </summary>
    public static void NormalizeToolCalls(JsonElement msg, JsonObject raw, string p)
    {
        if (!msg.TryGetProperty("tool_calls", out var calls) || calls.ValueKind == JsonValueKind.Null)
        {
            raw.Remove("tool_calls");
            return;
        }
        if (calls.ValueKind != JsonValueKind.Array)
        {
            throw ApiException.WrongType(p + ".tool_calls", "an array of tool calls");
        }
        var normalized = new JsonArray();
        var j = 0;
        foreach (var call in calls.EnumerateArray())
        {
            var cp = $"{p}.tool_calls[{j}]";
            if (call.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.WrongType(cp, "a tool call object");
            }
            if (call.TryGetProperty("id", out var id) && id.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                throw ApiException.WrongType(cp + ".id", "a string");
            }
            if (call.TryGetProperty("type", out var type) && type.ValueKind != JsonValueKind.Null
                && (type.ValueKind != JsonValueKind.String || type.GetString() != "function"))
            {
                throw ApiException.Invalid(cp + ".type", $"Invalid value for '{cp}.type': only 'function' is supported.");
            }
            if (!call.TryGetProperty("function", out var fn) || fn.ValueKind == JsonValueKind.Null)
            {
                throw ApiException.Missing(cp + ".function");
            }
            if (fn.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.WrongType(cp + ".function", "an object");
            }
            RequiredString(fn, "name", cp + ".function.name");
            var node = (JsonObject)JsonNode.Parse(call.GetRawText())!;
            node["type"] = "function";
            var fnNode = (JsonObject)node["function"]!;
            if (fn.TryGetProperty("arguments", out var args) && args.ValueKind != JsonValueKind.Null)
            {
                if (args.ValueKind == JsonValueKind.String)
                {
                    fnNode["arguments"] = ParseArguments(args.GetString()!);
                }
                else if (args.ValueKind != JsonValueKind.Object)
                {
                    throw ApiException.WrongType(cp + ".function.arguments", "a JSON string");
                }
            }
            else
            {
                fnNode["arguments"] = new JsonObject();
            }
            normalized.Add(node);
            j++;
        }
        raw["tool_calls"] = normalized;
    }

    /// <summary>Arguments that are not a JSON object stay the string they were: the template shows what the model said.</summary>
    private static JsonNode ParseArguments(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return new JsonObject();
        }
        try
        {
            return JsonNode.Parse(text) is JsonObject o ? o : JsonValue.Create(text);
        }
        catch (JsonException)
        {
            return JsonValue.Create(text);
        }
    }

    /// <summary>Checks a <c>tool</c> message: it answers a call, so it names the call's id.</summary>
    public static void CheckToolMessage(JsonElement msg, string p)
    {
        if (!msg.TryGetProperty("tool_call_id", out var id) || id.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.Missing(p + ".tool_call_id");
        }
        if (id.ValueKind != JsonValueKind.String)
        {
            throw ApiException.WrongType(p + ".tool_call_id", "a string");
        }
    }

    private static string RequiredString(JsonElement obj, string name, string param)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.Missing(param);
        }
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw ApiException.WrongType(param, "a string");
    }
}
