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
    [InlineData("\"best_of\":1,\"n\":2", "best_of")]
    [InlineData("\"best_of\":2,\"stream\":true", "best_of")]
    [InlineData("\"suffix\":\" the end.\"", "suffix")]
    [InlineData("\"prompt\":[\"one\",[1,2]]", "prompt")]
    [InlineData("\"prompt\":[]", "prompt")]
    public async Task Parameters_that_cannot_be_honoured_are_a_400_naming_them(string fields, string param)
    {
        var body = fields.StartsWith("\"prompt\"", StringComparison.Ordinal) ? $"{{\"model\":\"tiny\",{fields}}}" : $"{{\"model\":\"tiny\",\"prompt\":\"x\",{fields}}}";
        var (status, doc, _) = await Raw.PostAsync(S.Http, "v1/completions", body);
        Assert.Equal(400, status);
        Raw.AssertError(doc, param);
    }

    [Fact]
    public async Task A_batch_larger_than_the_limit_is_a_400_naming_the_prompt()
    {
        var prompts = string.Join(",", Enumerable.Repeat("\"x\"", 65));
        var (status, doc, _) = await Raw.PostAsync(S.Http, "v1/completions", $"{{\"model\":\"tiny\",\"prompt\":[{prompts}]}}");
        Assert.Equal(400, status);
        Raw.AssertError(doc, "prompt");
    }

    [Fact]
    public async Task Best_of_equal_to_n_an_empty_suffix_and_unknown_fields_are_accepted()
    {
        var r = await CompleteAsync(",\"max_tokens\":2,\"best_of\":1,\"suffix\":\"\",\"some_future_field\":{\"x\":1}");
        Assert.Equal(2, Completion(r));
    }

    private static double Cumulative(JsonElement choice) => choice.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Sum(l => l.GetDouble());

    [Fact]
    public async Task Best_of_returns_the_n_candidates_with_the_highest_cumulative_logprob()
    {
        // The same seed gives the same candidates: n 4 shows them all, best_of 4 with n 2 must return the top two.
        const string sampled = ",\"temperature\":1.2,\"seed\":11,\"max_tokens\":6,\"ignore_eos\":true,\"logprobs\":0";
        var all = await CompleteAsync(sampled + ",\"n\":4");
        var candidates = all.GetProperty("choices").EnumerateArray().Select(c => (Text: c.GetProperty("text").GetString()!, Sum: Cumulative(c)))
            .OrderByDescending(c => c.Sum).ToList();
        Assert.Equal(4, candidates.Select(c => c.Text).Distinct().Count());

        var best = await CompleteAsync(sampled + ",\"n\":2,\"best_of\":4");
        var choices = best.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([0, 1], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal(candidates.Take(2).Select(c => c.Text), choices.Select(c => c.GetProperty("text").GetString()!));
        Assert.True(Cumulative(choices[0]) >= Cumulative(choices[1]));
        // Every candidate's tokens are generated and counted, as OpenAI bills them.
        Assert.Equal(24, Completion(best));

        // Without logprobs asked for, none are shown, though they ranked the candidates.
        var plain = await CompleteAsync(",\"temperature\":1.2,\"seed\":11,\"max_tokens\":6,\"ignore_eos\":true,\"best_of\":3");
        Assert.Single(plain.GetProperty("choices").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("choices")[0].GetProperty("logprobs").ValueKind);
        Assert.Equal(18, Completion(plain));
    }

    [Fact]
    public async Task A_batch_of_prompts_answers_each_prompt_n_times_numbered_prompt_by_prompt()
    {
        string[] prompts = ["Once upon a time", "The cat sat", "A B C"];
        var single = new List<int>();
        foreach (var p in prompts)
        {
            single.Add((await CompleteAsync(",\"max_tokens\":0,\"echo\":true", JsonSerializer.Serialize(p))).GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        }
        var batch = await CompleteAsync(",\"n\":2,\"max_tokens\":3,\"ignore_eos\":true,\"echo\":true", JsonSerializer.Serialize(prompts));
        var choices = batch.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal(Enumerable.Range(0, 6), choices.Select(c => c.GetProperty("index").GetInt32()));
        for (var i = 0; i < 6; i++)
        {
            // Echo shows which prompt a choice answers.
            Assert.StartsWith(prompts[i / 2], choices[i].GetProperty("text").GetString()!, StringComparison.Ordinal);
        }
        Assert.Equal(single.Sum(), batch.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(18, Completion(batch));

        // Token-id prompts batch the same way, and a stream numbers its chunks alike.
        using var tok = await S.Http.PostAsync("tokenize", Raw.Json("{\"content\":\"The cat sat\",\"add_special\":true}"));
        using var tokDoc = JsonDocument.Parse(await tok.Content.ReadAsStringAsync());
        var ids = tokDoc.RootElement.GetProperty("tokens").GetRawText();
        var (response, bytes) = await Raw.StreamAsync(S.Http, "v1/completions",
            $"{{\"model\":\"tiny\",\"prompt\":[{ids},{ids}],\"max_tokens\":4,\"ignore_eos\":true,\"echo\":true,\"stream\":true,\"stream_options\":{{\"include_usage\":true}}}}");
        Assert.Equal(200, (int)response.StatusCode);
        var texts = new Dictionary<int, StringBuilder>();
        JsonElement usage = default;
        foreach (var chunk in Encoding.UTF8.GetString(bytes).Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l[6..]).RootElement))
        {
            foreach (var c in chunk.GetProperty("choices").EnumerateArray())
            {
                texts.TryAdd(c.GetProperty("index").GetInt32(), new StringBuilder());
                texts[c.GetProperty("index").GetInt32()].Append(c.GetProperty("text").GetString());
            }
            if (chunk.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object)
            {
                usage = u.Clone();
            }
        }
        Assert.Equal([0, 1], texts.Keys.Order());
        Assert.All(texts.Values, t => Assert.StartsWith("The cat sat", t.ToString().TrimStart(), StringComparison.Ordinal));
        Assert.Equal(2 * single[1], usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(8, usage.GetProperty("completion_tokens").GetInt32());
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
