using System.Text;
using System.Text.Json;
using KServe.Node.Llama;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>lm-evaluation-harness's loglikelihood requests: echo, logprobs and max_tokens 0 on /v1/completions.</summary>
public sealed class EvaluationTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private RunningServer S => fixture.Server;

    private async Task<int[]> PromptIdsAsync(string text)
    {
        using var r = await S.Http.PostAsync("tokenize", Raw.Json(JsonSerializer.Serialize(new { content = text, add_special = true })));
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
    }

    /// <summary>A direct engine decode: the prefix, then the raw-logit log-probability of the forced next token.</summary>
    private async Task<float> EngineLogprobAsync(int[] prefix, int next)
    {
        var sampling = SamplingParams.Greedy with { LogitBias = new Dictionary<int, float> { [next] = 1000 } };
        var handle = S.Model.Engine.Submit(new GenerationRequest(prefix, sampling, 1, [], TopLogprobs: 0, IgnoreEos: true));
        float? logprob = null;
        await foreach (var ev in handle.Events.ReadAllAsync(TestContext.Current.CancellationToken))
        {
            if (ev is TokenEvent { TokenId: >= 0 } t)
            {
                Assert.Equal(next, t.TokenId);
                logprob = t.Logprob;
            }
        }
        return logprob ?? throw new InvalidOperationException("no token came back");
    }

    [Fact]
    public async Task A_loglikelihood_request_gets_each_prompt_token_s_logprob_equal_to_a_direct_engine_decode()
    {
        var ids = await PromptIdsAsync("The quick brown fox jumps over the lazy dog");
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/completions",
            $"{{\"model\":\"tiny\",\"prompt\":{JsonSerializer.Serialize(ids)},\"echo\":true,\"logprobs\":1,\"max_tokens\":0,\"temperature\":0}}");
        Assert.Equal(200, status);
        var choice = body!.RootElement.GetProperty("choices")[0];
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        var lp = choice.GetProperty("logprobs");
        var tokenLogprobs = lp.GetProperty("token_logprobs").EnumerateArray().ToList();
        var tops = lp.GetProperty("top_logprobs").EnumerateArray().ToList();
        Assert.Equal(ids.Length, tokenLogprobs.Count);
        Assert.Equal(ids.Length, lp.GetProperty("tokens").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, tokenLogprobs[0].ValueKind);
        Assert.Equal(JsonValueKind.Null, tops[0].ValueKind);
        for (var i = 1; i < ids.Length; i++)
        {
            var expected = await EngineLogprobAsync(ids[..i], ids[i]);
            // Relative: a decode batched with other requests' tokens rounds differently (the random model's logprobs reach -60).
            Assert.True(Math.Abs(expected - tokenLogprobs[i].GetSingle()) <= 1e-3 * Math.Max(1, Math.Abs(expected)), $"token {i}: engine {expected}, served {tokenLogprobs[i].GetSingle()}");
            // The alternatives hold the most likely token and the prompt's own.
            var alternatives = tops[i].EnumerateObject().Select(a => a.Value.GetSingle()).ToList();
            Assert.InRange(alternatives.Count, 1, 2);
            Assert.True(alternatives.Max() >= tokenLogprobs[i].GetSingle() - 1e-6);
        }
        var usage = body.RootElement.GetProperty("usage");
        Assert.Equal(ids.Length, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(0, usage.GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Echo_with_generation_streamed_or_not_starts_with_the_prompt_and_its_logprobs()
    {
        const string request = "{\"model\":\"tiny\",\"prompt\":\"Once upon a time\",\"echo\":true,\"logprobs\":0,\"max_tokens\":3,\"temperature\":0";
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/completions", request + "}");
        Assert.Equal(200, status);
        var choice = body!.RootElement.GetProperty("choices")[0];
        var text = choice.GetProperty("text").GetString()!;
        Assert.StartsWith("Once upon a time", text, StringComparison.Ordinal);
        var promptTokens = body.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        Assert.Equal(promptTokens + 3, choice.GetProperty("logprobs").GetProperty("token_logprobs").GetArrayLength());

        var (_, bytes) = await Raw.StreamAsync(S.Http, "v1/completions", request + ",\"stream\":true}");
        var chunks = Encoding.UTF8.GetString(bytes).Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l[6..]).RootElement.GetProperty("choices")).Where(c => c.GetArrayLength() > 0).Select(c => c[0]).ToList();
        Assert.Equal("Once upon a time", chunks[0].GetProperty("text").GetString());
        Assert.Equal(promptTokens, chunks[0].GetProperty("logprobs").GetProperty("token_logprobs").GetArrayLength());
        Assert.Equal(text, string.Concat(chunks.Select(c => c.GetProperty("text").GetString())));
    }

    [Fact]
    public async Task Max_tokens_zero_without_echo_answers_nothing_and_chat_still_needs_one()
    {
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/completions", "{\"model\":\"tiny\",\"prompt\":\"Hi\",\"max_tokens\":0}");
        Assert.Equal(200, status);
        Assert.Equal("", body!.RootElement.GetProperty("choices")[0].GetProperty("text").GetString());
        var (chat, chatBody, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":0}");
        Assert.Equal(400, chat);
        Raw.AssertError(chatBody, "max_tokens");
    }
}
