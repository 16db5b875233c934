using System.Text;
using System.Text.Json.Nodes;
using KServe.Node.LlmServer.Api;

namespace KServe.Node.LlmServer.Tests.Unit;

public sealed class ToolRequestTests
{
    private const string Tool = """{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}""";

    private static ParsedRequest Chat(string extra, string messages = """[{"role":"user","content":"x"}]""")
    {
        using var doc = GenerationRequestParser.ParseBody(Encoding.UTF8.GetBytes($$"""{"model":"m","messages":{{messages}}{{extra}}}"""));
        return GenerationRequestParser.ParseChat(doc.RootElement);
    }

    [Theory]
    [InlineData(""","tools":{}""", "tools")]
    [InlineData(""","tools":[5]""", "tools[0]")]
    [InlineData(""","tools":[{"function":{"name":"a"}}]""", "tools[0].type")]
    [InlineData(""","tools":[{"type":"retrieval","function":{"name":"a"}}]""", "tools[0].type")]
    [InlineData(""","tools":[{"type":"function"}]""", "tools[0].function")]
    [InlineData(""","tools":[{"type":"function","function":{}}]""", "tools[0].function.name")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"has space"}}]""", "tools[0].function.name")]
    [InlineData(""","tools":[{"type":"function","function":{"name":""}}]""", "tools[0].function.name")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"a"}}]""", "tools[1].function.name")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"a","description":3}}]""", "tools[0].function.description")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"a","parameters":"object"}}]""", "tools[0].function.parameters")]
    [InlineData(""","tools":[TOOL],"tool_choice":"sometimes" """, "tool_choice")]
    [InlineData(""","tools":[TOOL],"tool_choice":7""", "tool_choice")]
    [InlineData(""","tools":[TOOL],"tool_choice":{"type":"function"}""", "tool_choice.function")]
    [InlineData(""","tools":[TOOL],"tool_choice":{"type":"function","function":{"name":"nope"}}""", "tool_choice.function.name")]
    [InlineData(""","tools":[TOOL],"tool_choice":{"type":"file_search","function":{"name":"get_weather"}}""", "tool_choice.type")]
    [InlineData(""","tool_choice":"required" """, "tool_choice")]
    [InlineData(""","tools":[],"tool_choice":"required" """, "tool_choice")]
    [InlineData(""","tools":[TOOL],"parallel_tool_calls":"yes" """, "parallel_tool_calls")]
    [InlineData(""","tools":[TOOL],"tool_choice":"required","response_format":{"type":"json_object"}""", "response_format")]
    public void Bad_tools_and_tool_choice_are_400s_naming_the_field(string extra, string param)
    {
        var e = Assert.Throws<ApiException>(() => Chat(extra.Replace("TOOL", Tool, StringComparison.Ordinal)));
        Assert.Equal(400, e.Status);
        Assert.Equal(param, e.Param);
        Assert.Contains(param.Split('.', '[')[0], e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "Auto")]
    [InlineData(""","tool_choice":"none" """, "None")]
    [InlineData(""","tool_choice":"required" """, "Required")]
    [InlineData(""","tool_choice":{"type":"function","function":{"name":"get_weather"}}""", "Named")]
    public void Tool_choice_defaults_to_auto_with_tools(string extra, string kindName)
    {
        var kind = Enum.Parse<ToolChoiceKind>(kindName);
        var r = Chat(""","tools":[""" + Tool + "]" + extra);
        Assert.Equal(kind, r.ToolChoice);
        var tool = Assert.Single(r.ToolFunctions);
        Assert.Equal("get_weather", tool.Name);
        Assert.Equal("d", tool.Description);
        Assert.True(r.ParallelToolCalls);
        Assert.Equal(kind == ToolChoiceKind.Named ? "get_weather" : null, r.ToolChoiceName);
    }

    [Fact]
    public void Without_tools_the_choice_is_none_and_none_is_allowed()
    {
        Assert.Equal(ToolChoiceKind.None, Chat("").ToolChoice);
        Assert.Equal(ToolChoiceKind.None, Chat(""","tool_choice":"none" """).ToolChoice);
        Assert.False(Chat(""","tools":[""" + Tool + """],"parallel_tool_calls":false""").ParallelToolCalls);
    }

    [Fact]
    public void Assistant_tool_calls_get_object_arguments_and_tool_messages_are_kept_for_the_template()
    {
        var r = Chat("", """
            [{"role":"user","content":"Weather in Paris?"},
             {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
                                                             {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"not json"}}]},
             {"role":"tool","tool_call_id":"call_1","content":"18C"}]
            """);
        var assistant = r.Messages![1].Raw;
        Assert.Null(assistant["content"]);
        var calls = assistant["tool_calls"]!.AsArray();
        Assert.Equal("Paris", calls[0]!["function"]!["arguments"]!["city"]!.GetValue<string>());
        // Arguments that are not JSON reach the template as the string the client sent.
        Assert.Equal("not json", calls[1]!["function"]!["arguments"]!.GetValue<string>());
        Assert.Equal("call_1", r.Messages[2].Raw["tool_call_id"]!.GetValue<string>());
        Assert.Equal("18C", r.Messages[2].Content);
    }

    [Theory]
    [InlineData("""[{"role":"tool","content":"x"}]""", "messages[0].tool_call_id")]
    [InlineData("""[{"role":"tool","content":"x","tool_call_id":1}]""", "messages[0].tool_call_id")]
    [InlineData("""[{"role":"assistant","tool_calls":{}}]""", "messages[0].tool_calls")]
    [InlineData("""[{"role":"assistant","tool_calls":[{"id":"c","type":"function"}]}]""", "messages[0].tool_calls[0].function")]
    [InlineData("""[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]""", "messages[0].tool_calls[0].function.name")]
    [InlineData("""[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"a","arguments":5}}]}]""", "messages[0].tool_calls[0].function.arguments")]
    public void Bad_tool_history_is_a_400_naming_the_field(string messages, string param)
    {
        var e = Assert.Throws<ApiException>(() => Chat("", messages));
        Assert.Equal(param, e.Param);
    }

    [Fact]
    public void Tools_reach_the_template_as_sent()
    {
        var r = Chat(""","tools":[""" + Tool + "]");
        Assert.Equal("get_weather", r.Tools![0]!["function"]!["name"]!.GetValue<string>());
        Assert.IsType<JsonArray>(r.Tools);
    }
}

public sealed class ToolDuplicateKeyTests
{
    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"a","name":"b","arguments":"{}"}}]}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","role":"user","content":"x"}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object","type":"object"}}}]}""")]
    public void Duplicate_keys_are_a_400_not_a_500(string body)
    {
        var e = Assert.Throws<ApiException>(() =>
        {
            using var doc = GenerationRequestParser.ParseBody(Encoding.UTF8.GetBytes(body));
            _ = GenerationRequestParser.ParseChat(doc.RootElement);
        });
        Assert.Equal(400, e.Status);
    }

    [Fact]
    public void Duplicate_keys_in_generated_calls_stay_content()
    {
        var text = "<tool_call>{\"name\": \"a\", \"name\": \"b\", \"arguments\": {\"x\": 1, \"x\": 2}}</tool_call>";
        var r = ToolCallParser.Parse(ToolCallFormat.Hermes, text);
        Assert.Equal(text, r.Content);
        Assert.Empty(r.Calls);
    }
}
