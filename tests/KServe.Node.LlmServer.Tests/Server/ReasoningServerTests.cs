using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>A server on the tiny model as a reasoning model (its template opens a think block), parser left on auto.</summary>
public sealed class ThinkingServerFixture : IAsyncLifetime
{
    public RunningServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await RunningServer.StartAsync(model: TestModels.TinyThinking);

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}

/// <summary>
/// Reasoning split from the answer on a real server, against the same server's raw output with the parser off.
/// On this model a logit bias of 30 on <c>&lt;/think&gt;</c> makes greedy decoding close the block mid-output (the
/// test checks that in the raw output first), so the split has both sides.
/// </summary>
public sealed class ReasoningServerTests(ThinkingServerFixture fixture) : IClassFixture<ThinkingServerFixture>
{
    private RunningServer S => fixture.Server;

    private static string Request(string extra = "", int endThinkBias = 30) =>
        $$$"""{"model":"tiny","messages":[{"role":"user","content":"Think first."}],"temperature":0,"max_tokens":16,"logit_bias":{"{{{TestModels.EndThinkId}}}":{{{endThinkBias}}}}{{{extra}}}}""";

    private static async Task<string> RawOutputAsync(string request)
    {
        await using var raw = await RunningServer.StartAsync(["--reasoning-parser", "none"], model: TestModels.TinyThinking);
        var (status, body, _) = await Raw.PostAsync(raw.Http, "v1/chat/completions", request);
        Assert.Equal(200, status);
        var message = body!.RootElement.GetProperty("choices")[0].GetProperty("message");
        Assert.False(message.TryGetProperty("reasoning_content", out _), "the parser is off");
        return message.GetProperty("content").GetString()!;
    }

    private async Task<JsonElement> MessageAsync(string request)
    {
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", request);
        Assert.True(status == 200, body?.RootElement.ToString());
        return body!.RootElement.GetProperty("choices")[0].GetProperty("message").Clone();
    }

    private async Task<(string Reasoning, string Content, bool ReasoningAfterContent)> StreamAsync(string request)
    {
        var (response, bytes) = await Raw.StreamAsync(S.Http, "v1/chat/completions", request.Insert(1, "\"stream\":true,"));
        Assert.Equal(200, (int)response.StatusCode);
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        var after = false;
        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var chunk = JsonDocument.Parse(line["data: ".Length..]);
            var delta = chunk.RootElement.GetProperty("choices")[0].GetProperty("delta");
            if (delta.TryGetProperty("reasoning_content", out var r))
            {
                after |= content.Length > 0;
                reasoning.Append(r.GetString());
            }
            if (delta.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String)
            {
                content.Append(c.GetString());
            }
        }
        return (reasoning.ToString(), content.ToString(), after);
    }

    [Fact]
    public async Task Text_before_the_first_end_tag_is_reasoning_content_and_the_rest_is_content_whole_and_streamed()
    {
        var raw = await RawOutputAsync(Request());
        var end = raw.IndexOf("</think>", StringComparison.Ordinal);
        Assert.True(end > 0 && end + "</think>".Length < raw.Length, $"the raw output must close the block mid-way: {raw}");
        var (reasoning, content) = (raw[..end], raw[(end + "</think>".Length)..]);

        var message = await MessageAsync(Request());
        Assert.Equal(reasoning, message.GetProperty("reasoning_content").GetString());
        Assert.Equal(content, message.GetProperty("content").GetString());

        var streamed = await StreamAsync(Request());
        Assert.Equal((reasoning, content, false), streamed);
    }

    [Fact]
    public async Task Include_reasoning_false_leaves_the_reasoning_out_and_the_content_as_it_was()
    {
        var full = await MessageAsync(Request());
        var without = await MessageAsync(Request(",\"include_reasoning\":false"));
        Assert.False(without.TryGetProperty("reasoning_content", out _));
        Assert.Equal(full.GetProperty("content").GetString(), without.GetProperty("content").GetString());

        var streamed = await StreamAsync(Request(",\"include_reasoning\":false"));
        Assert.Equal(("", full.GetProperty("content").GetString(), false), streamed);
    }

    [Fact]
    public async Task An_output_that_never_closes_the_block_is_all_reasoning_and_the_sdk_reads_it()
    {
        var message = await MessageAsync(Request(endThinkBias: 0));
        Assert.False(string.IsNullOrEmpty(message.GetProperty("reasoning_content").GetString()));
        Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);

        // The official client's default call on such an answer: no content parts, a normal finish.
        var client = new ChatClient(RunningServer.ModelName, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(S.BaseAddress, "v1") });
        ChatCompletion c = await client.CompleteChatAsync([new UserChatMessage("Think first.")], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 8 });
        Assert.Equal(ChatFinishReason.Length, c.FinishReason);
        Assert.Empty(c.Content);
    }

    [Fact]
    public async Task Structured_output_constrains_the_answer_after_the_reasoning_not_the_reasoning()
    {
        // The wrapped grammar parses in llama.cpp and lets the model think: it writes no '<' of its own here, so the
        // whole short output is reasoning, where an unwrapped JSON grammar would have forced '{' first.
        var message = await MessageAsync(Request(",\"response_format\":{\"type\":\"json_object\"}", endThinkBias: 0));
        var reasoning = message.GetProperty("reasoning_content").GetString()!;
        Assert.False(reasoning.TrimStart().StartsWith('{'), reasoning);
    }

    [Fact]
    public async Task Completions_are_never_split()
    {
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/completions",
            $$$"""{"model":"tiny","prompt":"x","temperature":0,"max_tokens":4,"logit_bias":{"{{{TestModels.EndThinkId}}}":100}}""");
        Assert.Equal(200, status);
        var choice = body!.RootElement.GetProperty("choices")[0];
        Assert.Equal(string.Concat(Enumerable.Repeat("</think>", 4)), choice.GetProperty("text").GetString());
        Assert.False(choice.TryGetProperty("reasoning_content", out _));
    }

    [Fact]
    public async Task Qwen3_with_enable_thinking_false_answers_in_content()
    {
        await using var qwen = await RunningServer.StartAsync(["--reasoning-parser", "qwen3"], model: TestModels.TinyThinking);
        var (_, off, _) = await Raw.PostAsync(qwen.Http, "v1/chat/completions", Request(",\"chat_template_kwargs\":{\"enable_thinking\":false}", endThinkBias: 0));
        var message = off!.RootElement.GetProperty("choices")[0].GetProperty("message");
        Assert.False(message.TryGetProperty("reasoning_content", out _));
        Assert.False(string.IsNullOrEmpty(message.GetProperty("content").GetString()));

        var (_, on, _) = await Raw.PostAsync(qwen.Http, "v1/chat/completions", Request(endThinkBias: 0));
        Assert.Equal(JsonValueKind.Null, on!.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").ValueKind);
    }
}
