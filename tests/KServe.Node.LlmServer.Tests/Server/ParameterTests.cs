using System.Text;
using System.Text.Json;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>Every sampling and request parameter is honoured (each test fails if it were dropped) or refused with a 400 naming it.</summary>
public sealed class ParameterTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private RunningServer S => fixture.Server;

    private async Task<int> HelloTokenAsync() => (await S.TokenizeAsync("hello"))[^1];

    private async Task<JsonElement> CompleteAsync(string extra, string prompt = "\"Once upon a time\"")
    {
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/completions", $"{{\"model\":\"tiny\",\"prompt\":{prompt}{extra}}}");
        Assert.True(status == 200, body?.RootElement.GetRawText());
        return body!.RootElement.Clone();
    }

    private static string Text(JsonElement r) => r.GetProperty("choices")[0].GetProperty("text").GetString()!;

    private static string Finish(JsonElement r) => r.GetProperty("choices")[0].GetProperty("finish_reason").GetString()!;

    private static int Completion(JsonElement r) => r.GetProperty("usage").GetProperty("completion_tokens").GetInt32();

    private static int Count(string text, string piece) => (text.Length - text.Replace(piece, "", StringComparison.Ordinal).Length) / piece.Length;

    [Theory]
    [InlineData("repetition_penalty")]
    [InlineData("repeat_penalty")]
    public async Task Repetition_penalty_stops_a_token_from_repeating(string name)
    {
        var hello = await HelloTokenAsync();
        var bias = $",\"temperature\":0,\"max_tokens\":8,\"logit_bias\":{{\"{hello}\":100}}";
        var free = Text(await CompleteAsync(bias));
        Assert.Equal(8, Count(free, "hello"));
        var penalised = Text(await CompleteAsync(bias + $",\"{name}\":100"));
        Assert.StartsWith(" hello", penalised, StringComparison.Ordinal);
        Assert.True(Count(penalised, "hello") < 8, penalised);
    }

    [Fact]
    public async Task Typical_p_near_zero_makes_sampling_independent_of_the_seed()
    {
        // top_k first keeps the candidates' probabilities finite: llama.cpp's typical sampler computes an entropy
        // that a 32k-token tail of exact zeros turns into NaN.
        const string common = ",\"temperature\":1.5,\"top_k\":40,\"max_tokens\":16";
        var a = Text(await CompleteAsync(common + ",\"seed\":1"));
        var b = Text(await CompleteAsync(common + ",\"seed\":2"));
        Assert.NotEqual(a, b);
        var ta = Text(await CompleteAsync(common + ",\"seed\":1,\"typical_p\":0.000001"));
        var tb = Text(await CompleteAsync(common + ",\"seed\":2,\"typical_p\":0.000001"));
        Assert.Equal(ta, tb);
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/completions", "{\"model\":\"tiny\",\"prompt\":\"x\",\"typical_p\":1.5}");
        Assert.Equal(400, status);
        Raw.AssertError(body, "typical_p");
    }

    [Fact]
    public async Task Min_tokens_holds_back_end_of_sequence_and_stop_token_ids()
    {
        // Token 2 is </s>: biased up, the model ends at once.
        const string eos = ",\"max_tokens\":10,\"logit_bias\":{\"2\":100}";
        var ends = await CompleteAsync(eos);
        Assert.Equal(0, Completion(ends));
        Assert.Equal("stop", Finish(ends));
        var held = await CompleteAsync(eos + ",\"min_tokens\":5");
        Assert.Equal(5, Completion(held));
        Assert.Equal("stop", Finish(held));

        var hello = await HelloTokenAsync();
        var stopsAtHello = $",\"max_tokens\":10,\"logit_bias\":{{\"{hello}\":100}},\"stop_token_ids\":[{hello}]";
        var stopped = await CompleteAsync(stopsAtHello);
        Assert.Equal("stop", Finish(stopped));
        Assert.Equal("", Text(stopped));
        var later = await CompleteAsync(stopsAtHello + ",\"min_tokens\":3");
        Assert.Equal(3, Completion(later));
        Assert.Equal("stop", Finish(later));
        Assert.DoesNotContain("hello", Text(later), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stop_token_ids_end_a_chat_choice_without_writing_the_token()
    {
        var hello = await HelloTokenAsync();
        var body = $$"""{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"logit_bias":{"{{hello}}":100}""";
        var (s1, free, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", body + "}");
        Assert.Equal(200, s1);
        Assert.StartsWith("hello", free!.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!.TrimStart(), StringComparison.Ordinal);
        var (s2, stopped, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", body + $",\"stop_token_ids\":[{hello}]}}");
        Assert.Equal(200, s2);
        var choice = stopped!.RootElement.GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal("", choice.GetProperty("message").GetProperty("content").GetString() ?? "");
        var (bad, badBody, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", body + ",\"stop_token_ids\":[99999999]}");
        Assert.Equal(400, bad);
        Raw.AssertError(badBody, "stop_token_ids");
    }

    [Theory]
    [InlineData("\"best_of\":2,\"n\":1", "best_of")]
    [InlineData("\"best_of\":1,\"n\":2", "best_of")]
    [InlineData("\"suffix\":\" the end.\"", "suffix")]
    [InlineData("\"prompt\":[\"one\",\"two\"]", "prompt")]
    public async Task Parameters_that_cannot_be_honoured_are_a_400_naming_them(string fields, string param)
    {
        var body = fields.StartsWith("\"prompt\"", StringComparison.Ordinal) ? $"{{\"model\":\"tiny\",{fields}}}" : $"{{\"model\":\"tiny\",\"prompt\":\"x\",{fields}}}";
        var (status, doc, _) = await Raw.PostAsync(S.Http, "v1/completions", body);
        Assert.Equal(400, status);
        Raw.AssertError(doc, param);
    }

    [Fact]
    public async Task Best_of_equal_to_n_an_empty_suffix_and_unknown_fields_are_accepted()
    {
        var r = await CompleteAsync(",\"max_tokens\":2,\"best_of\":1,\"suffix\":\"\",\"some_future_field\":{\"x\":1}");
        Assert.Equal(2, Completion(r));
    }

    [Fact]
    public async Task A_prompt_of_token_ids_is_the_same_prompt_as_its_text()
    {
        using var tok = await S.Http.PostAsync("tokenize", Raw.Json("{\"content\":\"Once upon a time\",\"add_special\":true}"));
        using var tokDoc = JsonDocument.Parse(await tok.Content.ReadAsStringAsync());
        var ids = tokDoc.RootElement.GetProperty("tokens").GetRawText();
        const string greedy = ",\"temperature\":0,\"max_tokens\":8";
        var fromText = await CompleteAsync(greedy);
        foreach (var prompt in new[] { ids, $"[{ids}]" })
        {
            var fromIds = await CompleteAsync(greedy, prompt);
            Assert.Equal(Text(fromText), Text(fromIds));
            Assert.Equal(fromText.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), fromIds.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        }
    }

    [Fact]
    public async Task Continuous_usage_stats_put_running_usage_on_every_chunk()
    {
        var (_, bytes) = await Raw.StreamAsync(S.Http, "v1/chat/completions",
            """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}""");
        var counts = new List<int>();
        int? prompt = null;
        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var chunk = JsonDocument.Parse(line[6..]);
            var choices = chunk.RootElement.GetProperty("choices");
            if (choices.GetArrayLength() == 1 && choices[0].GetProperty("delta").TryGetProperty("content", out var c) && c.GetString() is { Length: > 0 })
            {
                var usage = chunk.RootElement.GetProperty("usage");
                counts.Add(usage.GetProperty("completion_tokens").GetInt32());
                prompt ??= usage.GetProperty("prompt_tokens").GetInt32();
                Assert.Equal(prompt + counts[^1], usage.GetProperty("total_tokens").GetInt32());
            }
        }
        Assert.NotEmpty(counts);
        Assert.Equal(counts.Order().ToList(), counts);
        Assert.True(counts[^1] <= 5 && counts[0] >= 1);
        Assert.True(prompt > 0);

        var (_, plain) = await Raw.StreamAsync(S.Http, "v1/chat/completions",
            """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"stream":true}""");
        Assert.DoesNotContain("\"completion_tokens\"", Encoding.UTF8.GetString(plain), StringComparison.Ordinal);
    }
}
