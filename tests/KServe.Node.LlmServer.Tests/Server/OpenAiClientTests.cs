using System.ClientModel;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>The official OpenAI .NET client, unchanged, against a running llm-server.</summary>
public sealed class OpenAiClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private OpenAIClientOptions Options(string prefix = "v1") => new() { Endpoint = new Uri(fixture.Server.BaseAddress, prefix) };

    private ChatClient Chat(string prefix = "v1") => new(RunningServer.ModelName, new ApiKeyCredential("unused"), Options(prefix));

    private static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0, MaxOutputTokenCount = maxTokens };

    [Theory]
    [InlineData("v1")]
    [InlineData("openai/v1")]
    public async Task Chat_completion_returns_text_finish_reason_and_usage(string prefix)
    {
        ChatCompletion c = await Chat(prefix).CompleteChatAsync([new SystemChatMessage("You are terse."), new UserChatMessage("Say hello")], Greedy(12));
        Assert.Equal(ChatMessageRole.Assistant, c.Role);
        Assert.False(string.IsNullOrEmpty(c.Content[0].Text));
        Assert.Equal(ChatFinishReason.Length, c.FinishReason);
        Assert.Equal(12, c.Usage.OutputTokenCount);
        Assert.True(c.Usage.InputTokenCount > 0);
        Assert.Equal(c.Usage.InputTokenCount + c.Usage.OutputTokenCount, c.Usage.TotalTokenCount);
        Assert.NotNull(c.Usage.InputTokenDetails);
        Assert.StartsWith("chatcmpl-", c.Id, StringComparison.Ordinal);
        Assert.Equal(RunningServer.ModelName, c.Model);
    }

    [Fact]
    public async Task Streaming_chat_matches_the_non_streaming_answer_and_ends_with_usage()
    {
        var client = Chat();
        ChatCompletion whole = await client.CompleteChatAsync([new UserChatMessage("Count to five")], Greedy(16));
        var text = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        var updates = 0;
        await foreach (var u in client.CompleteChatStreamingAsync([new UserChatMessage("Count to five")], Greedy(16)))
        {
            updates++;
            foreach (var part in u.ContentUpdate)
            {
                text.Append(part.Text);
            }
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.True(updates > 2);
        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage);
        Assert.Equal(16, usage.OutputTokenCount);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);
    }

    [Fact]
    public async Task Models_list_and_get_show_the_served_model()
    {
        var models = new OpenAIModelClient(new ApiKeyCredential("unused"), Options());
        OpenAIModelCollection all = await models.GetModelsAsync();
        Assert.Equal(RunningServer.ModelName, Assert.Single(all).Id);
        OpenAIModel one = await models.GetModelAsync(RunningServer.ModelName);
        Assert.Equal(RunningServer.ModelName, one.Id);
        Assert.Equal("kserve-node", one.OwnedBy);
        var missing = await Assert.ThrowsAsync<ClientResultException>(() => models.GetModelAsync("nope"));
        Assert.Equal(404, missing.Status);
    }

    [Fact]
    public async Task Stop_sequence_ends_the_answer_before_it_with_finish_reason_stop()
    {
        var client = Chat();
        ChatCompletion free = await client.CompleteChatAsync([new UserChatMessage("Tell me a story")], Greedy(24));
        var full = free.Content[0].Text;
        // A stop string taken from the middle of the greedy answer: the same greedy run must end right before it.
        var stop = full.Substring(full.Length / 2, 3);
        var expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];
        var options = Greedy(24);
        options.StopSequences.Add(stop);
        ChatCompletion stopped = await client.CompleteChatAsync([new UserChatMessage("Tell me a story")], options);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
        Assert.Equal(expected, stopped.Content.Count == 0 ? "" : stopped.Content[0].Text);
    }

    [Fact]
    public async Task Logprobs_cover_every_token_with_the_requested_alternatives()
    {
        var options = Greedy(8);
        options.IncludeLogProbabilities = true;
        options.TopLogProbabilityCount = 3;
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Hi")], options);
        Assert.Equal(8, c.ContentTokenLogProbabilities.Count);
        foreach (var t in c.ContentTokenLogProbabilities)
        {
            Assert.True(t.LogProbability <= 0);
            Assert.Equal(3, t.TopLogProbabilities.Count);
            // Greedy: the chosen token is the most likely one.
            Assert.Equal(t.TopLogProbabilities.Max(a => a.LogProbability), t.LogProbability, 3);
            Assert.Equal(System.Text.Encoding.UTF8.GetBytes(t.Token), t.Utf8Bytes!.Value.ToArray());
        }
    }

    [Fact]
    public async Task Json_object_response_format_yields_a_json_object()
    {
        // The grammar makes any output a JSON object; a random-weight model would wander inside strings until
        // max_tokens, so a bias on the brace tokens steers it to a finished object that the grammar then closes.
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 40, ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() };
        foreach (var brace in await fixture.Server.BraceTokensAsync())
        {
            options.LogitBiases[brace] = 100;
        }
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Give me a JSON object")], options);
        Assert.Equal(ChatFinishReason.Stop, c.FinishReason);
        using var doc = JsonDocument.Parse(c.Content[0].Text);
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
    }
}
