using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KServe.Node.LlmServer.Templates;

namespace KServe.Node.LlmServer.Tests.Templates;

/// <summary>
/// Renders every real chat template bundled with llama.cpp with our renderer and with @huggingface/jinja
/// (the Hub's renderer, run by node at test time) and requires identical prompts.
/// </summary>
public sealed class ChatTemplateReferenceTests(ITestOutputHelper output)
{
    // Conversations rendered with each template: HF conventions (bos/eos tokens, no tools or one function).
    internal static JsonArray Cases()
    {
        static JsonObject Msg(string role, string content) => new() { ["role"] = role, ["content"] = content };
        // No tools variable at all when a conversation has none, as the server renders it (an empty list would
        // make Llama 3.x and Mistral templates write their tool instructions).
        static JsonObject Ctx(JsonArray messages, bool addGenerationPrompt, JsonArray? tools = null)
        {
            var ctx = Base(messages, addGenerationPrompt);
            if (tools is not null)
            {
                ctx["tools"] = tools;
            }
            return ctx;
        }
        static JsonObject Base(JsonArray messages, bool addGenerationPrompt) => new()
        {
            ["messages"] = messages,
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
        };
        var weather = JsonNode.Parse("""
            {"type":"function","function":{"name":"get_weather","description":"Current weather in a city.",
             "parameters":{"type":"object","properties":{"city":{"type":"string","description":"City name"},
             "days":{"type":"integer"}},"required":["city"]}}}
            """)!;
        return
        [
            Ctx([Msg("system", "You are a helpful assistant."), Msg("user", "Hello there!")], true),
            Ctx([Msg("user", "What is 2+2?"), Msg("assistant", "It is 4."), Msg("user", "And 3+3?")], true),
            Ctx([Msg("system", "Be brief."), Msg("user", "Hi \"quoted\" ünïcode 😀\nsecond line"), Msg("assistant", "Hello.")], false),
            Ctx([Msg("system", "Use tools when needed."), Msg("user", "Weather in Paris?")], true, [weather]),
            // A tool round trip as the server hands it over: the call's arguments as an object, content null.
            Ctx([Msg("user", "Weather in Paris?"), ToolCallMessage(), ToolResult(), ], true, [weather.DeepClone()]),
        ];

        static JsonObject ToolCallMessage() => new()
        {
            ["role"] = "assistant",
            ["content"] = null,
            ["tool_calls"] = new JsonArray(new JsonObject
            {
                // Nine alphanumerics: Mistral's templates refuse other ids.
                ["id"] = "call12345",
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = "get_weather", ["arguments"] = new JsonObject { ["city"] = "Paris", ["days"] = 2 } },
            }),
        };

        static JsonObject ToolResult() => new() { ["role"] = "tool", ["tool_call_id"] = "call12345", ["content"] = "{\"temperature\": 18}" };
    }

    [Fact]
    public async Task Bundled_templates_render_exactly_like_the_hub_renderer()
    {
        var files = Directory.GetFiles(RepoPaths.Templates, "*.jinja").Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count >= 70, $"expected the 70 bundled templates, found {files.Count} in {RepoPaths.Templates}");
        var templates = new JsonObject();
        foreach (var f in files)
        {
            templates[Path.GetFileNameWithoutExtension(f)] = File.ReadAllText(f);
        }
        var cases = Cases();
        var input = new JsonObject { ["jinjaModule"] = RepoPaths.JinjaModule, ["templates"] = templates, ["cases"] = cases.DeepClone() };
        var script = Path.Combine(AppContext.BaseDirectory, "Templates", "render-reference.mjs");
        var json = await RepoPaths.RunNodeAsync(script, input.ToJsonString(), TestContext.Current.CancellationToken);
        using var reference = JsonDocument.Parse(json);

        var agree = 0;
        var referenceRenders = 0;
        var failures = new List<string>();
        var report = new StringBuilder();
        foreach (var f in files)
        {
            var name = Path.GetFileNameWithoutExtension(f);
            var results = reference.RootElement.GetProperty(name).EnumerateArray().ToList();
            var referenceOk = results.All(r => r.GetProperty("ok").GetBoolean());
            if (referenceOk)
            {
                referenceRenders++;
            }
            JinjaTemplate? template = null;
            string? parseError = null;
            try
            {
                template = JinjaTemplate.Parse(File.ReadAllText(f));
            }
            catch (JinjaException e)
            {
                parseError = e.Message;
            }
            var allSame = true;
            for (var i = 0; i < results.Count; i++)
            {
                var expectedOk = results[i].GetProperty("ok").GetBoolean();
                string? ours = null;
                string? ourError = parseError;
                if (template is not null)
                {
                    try
                    {
                        using var ctx = JsonDocument.Parse(cases[i]!.ToJsonString());
                        ours = template.Render(ctx.RootElement);
                    }
                    catch (JinjaException e)
                    {
                        ourError = e.Message;
                    }
                }
                var same = expectedOk ? ours == results[i].GetProperty("text").GetString() : ours is null;
                if (!same)
                {
                    allSame = false;
                    var expected = expectedOk ? results[i].GetProperty("text").GetString() : "error: " + results[i].GetProperty("error").GetString();
                    var detail = $"{name} case {i}: expected {Show(expected)} got {(ours is null ? "error: " + ourError : Show(ours))}";
                    if (expectedOk)
                    {
                        failures.Add(detail);
                    }
                    report.AppendLine("  differs: " + detail);
                }
            }
            if (allSame)
            {
                agree++;
            }
            report.AppendLine($"{(allSame ? "agree " : "DIFFER")} {(referenceOk ? "" : "(reference refuses) ")}{name}");
        }
        output.WriteLine($"chat templates: {agree} of {files.Count} give the same result as @huggingface/jinja on all {cases.Count} conversations "
            + $"(same prompt, or both refuse); {referenceRenders} render every conversation in the reference");
        output.WriteLine(report.ToString());
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static string Show(string? s) => s is null ? "null" : JsonSerializer.Serialize(s.Length > 400 ? s[..400] + "…" : s);
}
