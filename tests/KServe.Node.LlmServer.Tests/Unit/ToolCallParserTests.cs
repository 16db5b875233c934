using System.Text;
using System.Text.Json;
using KServe.Node.LlmServer.Api;
using KServe.Node.LlmServer.Grammar;
using KServe.Node.LlmServer.Serving;

namespace KServe.Node.LlmServer.Tests.Unit;

public sealed class ToolCallParserTests
{
    private static void AssertArgs(string expectedJson, string actual) =>
        Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(expectedJson).RootElement, JsonDocument.Parse(actual).RootElement), actual);

    [Fact]
    public void Hermes_call_after_text_splits_content_and_call()
    {
        var r = ToolCallParser.Parse(ToolCallFormat.Hermes, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
        Assert.Equal("Let me check.\n", r.Content);
        var call = Assert.Single(r.Calls);
        Assert.Equal("get_weather", call.Name);
        AssertArgs("""{"city":"Paris"}""", call.Arguments);
    }

    [Fact]
    public void Hermes_several_calls_and_an_unclosed_last_block_are_all_found()
    {
        var r = ToolCallParser.Parse(ToolCallFormat.Hermes,
            "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": {\"x\": [1, 2]}}");
        Assert.Null(r.Content);
        Assert.Equal(["a", "b"], r.Calls.Select(c => c.Name));
        AssertArgs("""{"x":[1,2]}""", r.Calls[1].Arguments);
    }

    [Theory]
    [InlineData("<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": 1</tool_call>")]
    [InlineData("<tool_call>{\"arguments\": {}}</tool_call>")]
    [InlineData("<tool_call>{\"name\": 5, \"arguments\": {}}</tool_call>")]
    [InlineData("<tool_call>{\"name\": \"a\", \"arguments\": [1]}</tool_call>")]
    [InlineData("text <tool_call>not json</tool_call>")]
    [InlineData("<tool_call>")]
    public void Hermes_malformed_call_text_stays_content(string text)
    {
        var r = ToolCallParser.Parse(ToolCallFormat.Hermes, text);
        Assert.Equal(text, r.Content);
        Assert.Empty(r.Calls);
    }

    [Fact]
    public void Arguments_written_as_a_json_string_are_unwrapped()
    {
        var r = ToolCallParser.Parse(ToolCallFormat.Hermes, "<tool_call>{\"name\": \"a\", \"arguments\": \"{\\\"k\\\": true}\"}</tool_call>");
        AssertArgs("""{"k":true}""", Assert.Single(r.Calls).Arguments);
    }

    [Theory]
    [InlineData("{\"name\": \"a\", \"parameters\": {\"q\": \"x\"}}")]
    [InlineData("  <|python_tag|>{\"name\": \"a\", \"arguments\": {\"q\": \"x\"}}")]
    public void Llama_json_call_is_found_with_either_arguments_key(string text)
    {
        var r = ToolCallParser.Parse(ToolCallFormat.Llama3Json, text);
        Assert.Null(r.Content);
        var call = Assert.Single(r.Calls);
        Assert.Equal("a", call.Name);
        AssertArgs("""{"q":"x"}""", call.Arguments);
    }

    [Fact]
    public void Llama_json_calls_joined_by_semicolons_are_all_found()
    {
        var r = ToolCallParser.Parse(ToolCallFormat.Llama3Json, "{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"n\": 2}}");
        Assert.Equal(["a", "b"], r.Calls.Select(c => c.Name));
    }

    [Theory]
    [InlineData("The answer is {\"name\": \"a\", \"parameters\": {}}")]
    [InlineData("{\"name\": \"a\", \"parameters\": {}")]
    [InlineData("{\"city\": \"Paris\"}")]
    [InlineData("{\"name\": \"a\", \"parameters\": {}} and more words")]
    public void Llama_json_that_is_not_a_whole_call_stays_content(string text)
    {
        var r = ToolCallParser.Parse(ToolCallFormat.Llama3Json, text);
        Assert.Equal(text, r.Content);
        Assert.Empty(r.Calls);
    }

    [Theory]
    [InlineData("[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]", null)]
    [InlineData("Sure. [TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]", "Sure. ")]
    [InlineData("[TOOL_CALLS]a[ARGS]{\"x\": 1}[TOOL_CALLS]b[ARGS]{}", null)]
    [InlineData(" [{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]", null)]
    public void Mistral_calls_in_both_syntaxes_are_found(string text, string? content)
    {
        var r = ToolCallParser.Parse(ToolCallFormat.Mistral, text);
        Assert.Equal(content, r.Content);
        Assert.Equal(["a", "b"], r.Calls.Select(c => c.Name));
        AssertArgs("""{"x":1}""", r.Calls[0].Arguments);
    }

    [Theory]
    [InlineData("[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}")]
    [InlineData("[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}] trailing")]
    [InlineData("[TOOL_CALLS]a[ARGS]{\"x\": ")]
    [InlineData("[TOOL_CALLS]{\"name\": \"a\"}")]
    public void Mistral_malformed_calls_stay_content(string text)
    {
        var r = ToolCallParser.Parse(ToolCallFormat.Mistral, text);
        Assert.Equal(text, r.Content);
        Assert.Empty(r.Calls);
    }

    [Theory]
    [InlineData("{% for m in messages %}<tool_call>{% endfor %}", "Hermes")]
    [InlineData("{{ '[TOOL_CALLS]' + tool_calls | tojson }}", "Mistral")]
    [InlineData("<|start_header_id|>ipython<|end_header_id|>", "Llama3Json")]
    [InlineData("{{ '<|im_start|>' }}", "Hermes")]
    [InlineData(null, "Hermes")]
    public void The_format_is_detected_from_the_chat_template(string? template, string expected) =>
        Assert.Equal(expected, ToolCallParser.Detect(template).ToString());

    [Fact]
    public void Call_ids_have_the_openai_prefix_or_mistral_shape()
    {
        Assert.Matches("^call_[A-Za-z0-9]{24}$", ToolCallParser.NewCallId(ToolCallFormat.Hermes));
        Assert.Matches("^[A-Za-z0-9]{9}$", ToolCallParser.NewCallId(ToolCallFormat.Mistral));
    }

    [Fact]
    public void Parallel_false_keeps_only_the_first_call()
    {
        var text = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>";
        Assert.Equal(2, ToolCallOutput.Split(ToolCallFormat.Hermes, text, parallel: true).Calls!.Length);
        Assert.Equal("a", Assert.Single(ToolCallOutput.Split(ToolCallFormat.Hermes, text, parallel: false).Calls!).Function.Name);
    }

    public static TheoryData<string, string> StreamCases() => new()
    {
        { "Hermes", "Checking <tool this> first.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"q\": 1}}\n</tool_call>" },
        { "Hermes", "\n\n<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>" },
        { "Hermes", "No call here, only <tool_ talk and <tool_call> broken" },
        { "Hermes", "Plain answer ending in <tool_" },
        { "Llama3Json", "  {\"name\": \"a\", \"parameters\": {\"q\": 1}}" },
        { "Llama3Json", "Text then <|python_tag|>{\"name\": \"a\", \"parameters\": {}}" },
        { "Llama3Json", "{not a call" },
        { "Mistral", "Sure [TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}]" },
        { "Mistral", "[TOOL_ nothing" },
        { "Mistral", "[{\"name\": \"a\", \"arguments\": {}}]" },
        { "Mistral", "A list [1, 2] then [TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}]" },
        { "Mistral", "[1, 2] is a list" },
        { "Mistral", "[1, 2] is a list; [TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}]" },
        { "Llama3Json", "Use {braces} then <|python_tag|>{\"name\": \"a\", \"parameters\": {}}" },
    };

    [Theory]
    [MemberData(nameof(StreamCases))]
    public void Streaming_pieces_give_the_same_content_and_calls_as_the_whole_text(string formatName, string text)
    {
        var format = Enum.Parse<ToolCallFormat>(formatName);
        var (content, calls) = ToolCallOutput.Split(format, text, parallel: true);
        foreach (var size in new[] { 1, 2, 3, 7, text.Length })
        {
            var streamer = new ToolCallStreamer(format, parallel: true);
            var sent = new StringBuilder();
            for (var i = 0; i < text.Length; i += size)
            {
                var piece = streamer.Push(text.Substring(i, Math.Min(size, text.Length - i)));
                // Nothing sent may contain the start of a call.
                Assert.DoesNotContain(format == ToolCallFormat.Hermes ? "<tool_call>" : format == ToolCallFormat.Mistral ? "[TOOL_CALLS]" : "<|python_tag|>", sent.Append(piece).ToString());
            }
            var (rest, streamedCalls) = streamer.Finish();
            sent.Append(rest);
            Assert.Equal(content ?? "", sent.ToString());
            Assert.Equal(calls?.Select(c => (c.Function.Name, c.Function.Arguments)), streamedCalls?.Select(c => (c.Function.Name, c.Function.Arguments)));
        }
    }

    [Fact]
    public void Streaming_sends_content_as_soon_as_it_cannot_be_a_marker()
    {
        var streamer = new ToolCallStreamer(ToolCallFormat.Hermes, parallel: true);
        Assert.Equal("Hello", streamer.Push("Hello"));
        Assert.Equal(" ", streamer.Push(" <tool"));
        Assert.Equal("<tools!", streamer.Push("s!"));
    }

    [Fact]
    public void Required_grammar_names_every_tool_and_a_named_choice_only_one()
    {
        var tools = new List<ToolFunction>
        {
            new("get_weather", null, System.Text.Json.Nodes.JsonNode.Parse("""{"type":"object","properties":{"root":{"type":"boolean"}},"required":["root"]}""")),
            new("get_time", null, null),
        };
        var all = ToolCallGrammar.Build(ToolCallFormat.Hermes, tools, null, parallel: true);
        Assert.Contains("get_weather", all, StringComparison.Ordinal);
        Assert.Contains("get_time", all, StringComparison.Ordinal);
        Assert.Single(all.Split('\n'), l => l.StartsWith("root ::= ", StringComparison.Ordinal));
        var one = ToolCallGrammar.Build(ToolCallFormat.Mistral, tools, "get_time", parallel: true);
        Assert.DoesNotContain("get_weather", one, StringComparison.Ordinal);
        Assert.Contains("TOOL_CALLS", one, StringComparison.Ordinal);
    }

    [Fact]
    public void A_schema_that_cannot_be_enforced_is_a_400_naming_the_tool()
    {
        var tools = new List<ToolFunction>
        {
            new("ok", null, null),
            new("bad", null, System.Text.Json.Nodes.JsonNode.Parse("""{"type":"spaceship"}""")),
        };
        var e = Assert.Throws<ApiException>(() => ToolCallGrammar.Build(ToolCallFormat.Hermes, tools, null, parallel: true));
        Assert.Equal(400, e.Status);
        Assert.Equal("tools[1].function.parameters", e.Param);
    }
}
