using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>
/// Tool calling against a real server on the tiny random-weights model whose chat template renders tools:
/// "required" and named calls are enforced by a grammar, so even this model writes calls that parse.
/// </summary>
public sealed class ToolCallingTests(ToolServerFixture fixture) : IClassFixture<ToolServerFixture>
{
    private const string WeatherSchema = """{"type":"object","properties":{"unit":{"enum":["celsius","fahrenheit"]},"days":{"type":"integer"},"hourly":{"type":"boolean"}},"required":["unit","days","hourly"]}""";
    private const string TimeSchema = """{"type":"object","properties":{"utc":{"type":"boolean"}},"required":["utc"]}""";

    private RunningServer S => fixture.Server;

    private ChatClient Chat() => new(RunningServer.ModelName, new ApiKeyCredential("unused"),
        new OpenAIClientOptions { Endpoint = new Uri(S.BaseAddress, "v1") });

    private static ChatCompletionOptions Options(ChatToolChoice choice)
    {
        var o = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 160, ToolChoice = choice, AllowParallelToolCalls = false };
        o.Tools.Add(ChatTool.CreateFunctionTool("get_weather", "Weather forecast for a city", BinaryData.FromString(WeatherSchema)));
        o.Tools.Add(ChatTool.CreateFunctionTool("get_time", "The current time", BinaryData.FromString(TimeSchema)));
        return o;
    }

    private static void AssertValid(string name, string arguments)
    {
        using var args = JsonDocument.Parse(arguments);
        var a = args.RootElement;
        Assert.Equal(JsonValueKind.Object, a.ValueKind);
        if (name == "get_weather")
        {
            Assert.Contains(a.GetProperty("unit").GetString(), new[] { "celsius", "fahrenheit" });
            Assert.True(a.GetProperty("days").TryGetInt64(out _));
            Assert.True(a.GetProperty("hourly").ValueKind is JsonValueKind.True or JsonValueKind.False);
            Assert.Equal(3, a.EnumerateObject().Count());
        }
        else
        {
            Assert.Equal("get_time", name);
            Assert.True(a.GetProperty("utc").ValueKind is JsonValueKind.True or JsonValueKind.False);
        }
    }

    [Fact]
    public async Task Required_tool_choice_gives_a_valid_call_with_finish_reason_tool_calls()
    {
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("What is the weather in Paris?")], Options(ChatToolChoice.CreateRequiredChoice()));
        Assert.Equal(ChatFinishReason.ToolCalls, c.FinishReason);
        var call = Assert.Single(c.ToolCalls);
        Assert.Equal(ChatToolCallKind.Function, call.Kind);
        Assert.Matches("^call_[A-Za-z0-9]+$", call.Id);
        Assert.Contains(call.FunctionName, new[] { "get_weather", "get_time" });
        AssertValid(call.FunctionName, call.FunctionArguments.ToString());
        Assert.Empty(c.Content);
    }

    [Theory]
    [InlineData("get_weather")]
    [InlineData("get_time")]
    public async Task Named_tool_choice_calls_that_function(string name)
    {
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Go")], Options(ChatToolChoice.CreateFunctionChoice(name)));
        Assert.Equal(ChatFinishReason.ToolCalls, c.FinishReason);
        var call = Assert.Single(c.ToolCalls);
        Assert.Equal(name, call.FunctionName);
        AssertValid(name, call.FunctionArguments.ToString());
    }

    [Theory]
    [InlineData("required")]
    [InlineData("get_weather")]
    public async Task Streaming_tool_calls_assemble_to_the_non_streaming_call(string choice)
    {
        var options = Options(choice == "required" ? ChatToolChoice.CreateRequiredChoice() : ChatToolChoice.CreateFunctionChoice(choice));
        List<ChatMessage> messages = [new UserChatMessage("Weather for Oslo, please")];
        ChatCompletion whole = await Chat().CompleteChatAsync(messages, options);
        var call = Assert.Single(whole.ToolCalls);

        var ids = new Dictionary<int, string>();
        var names = new Dictionary<int, string>();
        var args = new Dictionary<int, StringBuilder>();
        var content = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var u in Chat().CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in u.ContentUpdate)
            {
                content.Append(part.Text);
            }
            foreach (var t in u.ToolCallUpdates)
            {
                if (t.ToolCallId is not null)
                {
                    ids[t.Index] = t.ToolCallId;
                }
                if (t.FunctionName is not null)
                {
                    names[t.Index] = t.FunctionName;
                }
                if (t.FunctionArgumentsUpdate is { } a)
                {
                    (args.TryGetValue(t.Index, out var sb) ? sb : args[t.Index] = new StringBuilder()).Append(a.ToString());
                }
            }
            finish ??= u.FinishReason;
        }
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal("", content.ToString());
        Assert.Equal([0], names.Keys);
        Assert.StartsWith("call_", ids[0], StringComparison.Ordinal);
        Assert.Equal(call.FunctionName, names[0]);
        Assert.Equal(call.FunctionArguments.ToString(), args[0].ToString());
        AssertValid(names[0], args[0].ToString());
    }

    [Fact]
    public async Task A_round_trip_with_the_call_and_its_result_in_the_history_renders_and_answers()
    {
        var client = Chat();
        List<ChatMessage> messages = [new SystemChatMessage("You are helpful."), new UserChatMessage("Weather in Rome?")];
        ChatCompletion first = await client.CompleteChatAsync(messages, Options(ChatToolChoice.CreateFunctionChoice("get_weather")));
        var call = Assert.Single(first.ToolCalls);
        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, """{"temperature": 21}"""));
        var options = Options(ChatToolChoice.CreateNoneChoice());
        options.MaxOutputTokenCount = 8;
        ChatCompletion second = await client.CompleteChatAsync(messages, options);
        Assert.Equal(ChatFinishReason.Length, second.FinishReason);
        Assert.Empty(second.ToolCalls);
        Assert.False(string.IsNullOrEmpty(second.Content[0].Text));

        // The template saw the arguments as an object (not a JSON string) and the tool result as a tool response.
        var body = new
        {
            model = "tiny",
            messages = new object[]
            {
                new { role = "user", content = "Weather in Rome?" },
                new { role = "assistant", content = (string?)null, tool_calls = new[] { new { id = call.Id, type = "function", function = new { name = "get_weather", arguments = call.FunctionArguments.ToString() } } } },
                new { role = "tool", tool_call_id = call.Id, content = "21 degrees" },
            },
            tools = new[] { new { type = "function", function = new { name = "get_weather", parameters = JsonDocument.Parse(WeatherSchema).RootElement } } },
        };
        var (status, rendered, _) = await Raw.PostAsync(S.Http, "apply-template", JsonSerializer.Serialize(body));
        Assert.Equal(200, status);
        var prompt = rendered!.RootElement.GetProperty("prompt").GetString()!;
        Assert.Contains("<tools>\n{\"type\": \"function\"", prompt, StringComparison.Ordinal);
        Assert.Contains("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": ", prompt, StringComparison.Ordinal);
        Assert.Contains("<tool_response>\n21 degrees\n</tool_response>", prompt, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_function_without_parameters_is_called_with_empty_arguments(bool stream)
    {
        const string request = """
            {"model":"tiny","temperature":0,"max_tokens":60,"messages":[{"role":"user","content":"Ping"}],
             "tools":[{"type":"function","function":{"name":"ping"}},{"type":"function","function":{"name":"reset","parameters":{"type":"object","properties":{},"additionalProperties":false}}}],
             "tool_choice":"required","parallel_tool_calls":false
            """;
        if (!stream)
        {
            var (status, body, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", request + "}");
            Assert.Equal(200, status);
            var choice = body!.RootElement.GetProperty("choices")[0];
            Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
            var message = choice.GetProperty("message");
            Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);
            var call = Assert.Single(message.GetProperty("tool_calls").EnumerateArray());
            Assert.Equal("function", call.GetProperty("type").GetString());
            Assert.Contains(call.GetProperty("function").GetProperty("name").GetString(), new[] { "ping", "reset" });
            Assert.Equal("{}", call.GetProperty("function").GetProperty("arguments").GetString());
            return;
        }
        var (response, bytes) = await Raw.StreamAsync(S.Http, "v1/chat/completions", request + ""","stream":true}""");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        var events = Encoding.UTF8.GetString(bytes).Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Where(e => e.StartsWith("data: ", StringComparison.Ordinal)).ToArray();
        Assert.Equal("data: [DONE]", events[^1]);
        var deltas = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement.GetProperty("choices")[0]).ToList();
        var withCalls = deltas.Where(d => d.GetProperty("delta").TryGetProperty("tool_calls", out _)).ToList();
        Assert.Equal(2, withCalls.Count);
        var head = withCalls[0].GetProperty("delta").GetProperty("tool_calls")[0];
        Assert.Equal(0, head.GetProperty("index").GetInt32());
        Assert.StartsWith("call_", head.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("function", head.GetProperty("type").GetString());
        Assert.Equal("", head.GetProperty("function").GetProperty("arguments").GetString());
        var tail = withCalls[1].GetProperty("delta").GetProperty("tool_calls")[0];
        Assert.False(tail.TryGetProperty("id", out _));
        Assert.Equal("{}", tail.GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("tool_calls", deltas[^1].GetProperty("finish_reason").GetString());
        Assert.DoesNotContain(deltas, d => d.GetProperty("delta").TryGetProperty("content", out var c) && c.GetString() is { Length: > 0 });
    }

    [Fact]
    public async Task Every_choice_of_n_gets_its_own_call()
    {
        const string request = """
            {"model":"tiny","temperature":0.9,"seed":3,"n":2,"max_tokens":120,"messages":[{"role":"user","content":"Time?"}],
             "tools":[{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"utc":{"type":"boolean"}},"required":["utc"]}}}],
             "tool_choice":{"type":"function","function":{"name":"get_time"}}}
            """;
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", request);
        Assert.Equal(200, status);
        var choices = body!.RootElement.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal(2, choices.Count);
        var ids = new HashSet<string>();
        foreach (var c in choices)
        {
            Assert.Equal("tool_calls", c.GetProperty("finish_reason").GetString());
            var call = Assert.Single(c.GetProperty("message").GetProperty("tool_calls").EnumerateArray());
            Assert.True(ids.Add(call.GetProperty("id").GetString()!));
            AssertValid("get_time", call.GetProperty("function").GetProperty("arguments").GetString()!);
        }
    }

    [Fact]
    public async Task Parallel_required_calls_each_parse()
    {
        var options = Options(ChatToolChoice.CreateRequiredChoice());
        options.AllowParallelToolCalls = true;
        options.MaxOutputTokenCount = 400;
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Weather and time?")], options);
        if (c.FinishReason == ChatFinishReason.ToolCalls)
        {
            Assert.NotEmpty(c.ToolCalls);
            foreach (var call in c.ToolCalls)
            {
                AssertValid(call.FunctionName, call.FunctionArguments.ToString());
            }
            Assert.Equal(c.ToolCalls.Count, c.ToolCalls.Select(t => t.Id).Distinct().Count());
        }
        else
        {
            // The grammar allows more calls; a model that keeps adding them runs out of tokens mid-call.
            Assert.Equal(ChatFinishReason.Length, c.FinishReason);
            Assert.Contains("<tool_call>", c.Content[0].Text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Tool_choice_none_and_auto_without_a_call_answer_with_content()
    {
        foreach (var choice in new[] { ChatToolChoice.CreateNoneChoice(), ChatToolChoice.CreateAutoChoice() })
        {
            var options = Options(choice);
            options.MaxOutputTokenCount = 12;
            ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Hello")], options);
            // The random model does not write "<tool_call>" on its own: the text is content.
            Assert.Empty(c.ToolCalls);
            Assert.Equal(ChatFinishReason.Length, c.FinishReason);
            Assert.False(string.IsNullOrEmpty(c.Content[0].Text));
        }
    }

    [Fact]
    public async Task With_tools_control_tokens_stay_in_the_text_for_the_parser()
    {
        // Token 1 is <s>, a control token of the llama-spm vocabulary, standing in for markers like [TOOL_CALLS].
        const string body = """{"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":3,"temperature":0,"logit_bias":{"1":100}""";
        const string tools = ""","tools":[{"type":"function","function":{"name":"f"}}]""";
        var (_, plain, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", body + "}");
        Assert.Equal("", plain!.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var (_, withTools, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", body + tools + "}");
        Assert.Equal("<s><s><s>", withTools!.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var (_, none, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", body + tools + ""","tool_choice":"none"}""");
        Assert.Equal("", none!.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Theory]
    [InlineData(""","tools":[{"type":"function","function":{"name":"bad name!"}}]""", "tools[0].function.name")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}""", "tool_choice.function.name")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"a","parameters":{"type":"spaceship"}}}],"tool_choice":"required" """, "tools[0].function.parameters")]
    [InlineData(""","tool_choice":"auto" """, "tool_choice")]
    public async Task Bad_tools_are_openai_shaped_400s_naming_the_field(string extra, string param)
    {
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", $$"""{"model":"tiny","messages":[{"role":"user","content":"x"}]{{extra}}}""");
        Assert.Equal(400, status);
        Raw.AssertError(body, param);
    }

    [Fact]
    public async Task The_sdk_sees_bad_tool_choice_as_a_400()
    {
        var options = Options(ChatToolChoice.CreateFunctionChoice("nope"));
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Chat().CompleteChatAsync([new UserChatMessage("x")], options));
        Assert.Equal(400, e.Status);
    }

    [Theory]
    [InlineData("mistral")]
    [InlineData("llama3_json")]
    [InlineData("hermes")]
    public async Task Tool_call_parser_option_picks_the_format_for_the_grammar_and_the_parser(string parser)
    {
        await using var server = await RunningServer.StartAsync(["--tool-call-parser", parser], model: TestModels.TinyTools);
        var client = new ChatClient(RunningServer.ModelName, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "v1") });
        var options = Options(ChatToolChoice.CreateFunctionChoice("get_time"));
        ChatCompletion c = await client.CompleteChatAsync([new UserChatMessage("Time?")], options);
        Assert.Equal(ChatFinishReason.ToolCalls, c.FinishReason);
        var call = Assert.Single(c.ToolCalls);
        Assert.Equal("get_time", call.FunctionName);
        AssertValid("get_time", call.FunctionArguments.ToString());
        if (parser == "mistral")
        {
            Assert.Matches("^[A-Za-z0-9]{9}$", call.Id);
        }
    }
}
