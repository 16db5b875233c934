using System.Text.Json;
using System.Text.Json.Nodes;
using KServe.Node.LlmServer.Api;

namespace KServe.Node.LlmServer.Grammar;

/// <summary>
/// The grammar behind <c>tool_choice</c> "required" and a named function: the model's call syntax (Hermes
/// blocks, Llama JSON, Mistral's list) around objects whose name is one of the tools and whose arguments follow
/// that tool's parameter schema, so even a model that would not call a tool writes a call that parses.
/// </summary>
internal static class ToolCallGrammar
{
    /// <summary>Builds the grammar; a tool whose schema cannot be expressed throws naming <c>tools[i].function.parameters</c>.</summary>
    public static string Build(ToolCallFormat format, IReadOnlyList<ToolFunction> tools, string? onlyName, bool parallel)
    {
        var chosen = tools.Select((t, i) => (Tool: t, Index: i)).Where(t => onlyName is null || t.Tool.Name == onlyName).ToList();
        var schemas = new List<(string, JsonNode?)>();
        foreach (var (tool, index) in chosen)
        {
            // Arguments are always an object, even where the schema (true, or no type) would allow any value.
            var schema = TakesNoArguments(tool.Parameters) ? new JsonObject { ["const"] = new JsonObject() }
                : tool.Parameters is JsonObject { Count: > 0 } ? tool.Parameters : new JsonObject { ["type"] = "object" };
            try
            {
                // Checked one by one so that the error names the tool.
                _ = JsonSchemaGrammar.FromSchema(schema);
            }
            catch (JsonSchemaGrammarException e)
            {
                throw ApiException.Invalid($"tools[{index}].function.parameters", $"The parameters schema of '{tool.Name}' cannot be enforced: {e.Message}");
            }
            schemas.Add(($"tool-{index}-args", schema));
        }
        var argumentsKey = format == ToolCallFormat.Llama3Json ? "parameters" : "arguments";
        // One call for a named function or parallel_tool_calls false; otherwise one or more.
        var many = parallel && onlyName is null;
        return JsonSchemaGrammar.Compose(schemas, names =>
        {
            var call = "(" + string.Join(" | ", chosen.Select((c, i) =>
                "(" + Lit("{") + " space " + Lit("\"name\"") + " space " + Lit(":") + " space " + Lit(JsonSerializer.Serialize(c.Tool.Name))
                + " space " + Lit(",") + " space " + Lit($"\"{argumentsKey}\"") + " space " + Lit(":") + " space " + names[i] + " " + Lit("}") + ")")) + ")";
            return format switch
            {
                ToolCallFormat.Hermes => Hermes(call, many),
                ToolCallFormat.Mistral => Lit(ToolCallParser.MistralStart + "[") + " " + call + (many ? " (" + Lit(",") + " space " + call + ")*" : "") + " " + Lit("]"),
                _ => call + (many ? " (" + Lit(";") + " space " + call + ")*" : ""),
            };
        });
    }

    /// <summary>
    /// OpenAI reads a function without <c>parameters</c> as one with an empty parameter list; an object schema
    /// without properties that forbids additional ones says the same.
    /// </summary>
    private static bool TakesNoArguments(JsonNode? parameters) =>
        parameters is null
        || (parameters is JsonObject o && o["properties"] is null or JsonObject { Count: 0 } && o["additionalProperties"] is JsonValue v
            && v.TryGetValue<bool>(out var allowed) && !allowed && o["anyOf"] is null && o["oneOf"] is null && o["$ref"] is null);

    private static string Hermes(string call, bool many)
    {
        var block = "(" + Lit(ToolCallParser.HermesStart + "\n") + " " + call + " " + Lit("\n" + ToolCallParser.HermesEnd) + ")";
        return block + (many ? " (" + Lit("\n") + " " + block + ")*" : "");
    }

    private static string Lit(string text) => JsonSchemaGrammar.Literal(text);
}
