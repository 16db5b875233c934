using System.Text;
using System.Text.Json;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>Raw HTTP against the running server: shapes, errors, SSE bytes, cancellation, metrics, utility routes.</summary>
public sealed class RawHttpTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private RunningServer S => fixture.Server;

    private static string ChatBody(string extra = "", string content = "Hello") =>
        $$"""{"model":"tiny","messages":[{"role":"user","content":{{JsonSerializer.Serialize(content)}}}]{{extra}}}""";

    [Fact]
    public async Task Completions_with_n2_and_json_object_give_two_parsable_objects()
    {
        var braces = await S.BraceTokensAsync();
        var bias = string.Join(",", braces.Select(b => $"\"{b}\":100"));
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/completions",
            $$$"""{"model":"tiny","prompt":"JSON:","n":2,"max_tokens":40,"temperature":0.8,"seed":5,"response_format":{"type":"json_object"},"logit_bias":{{{{bias}}}}}""");
        Assert.Equal(200, status);
        var root = body!.RootElement;
        Assert.Equal("text_completion", root.GetProperty("object").GetString());
        Assert.StartsWith("cmpl-", root.GetProperty("id").GetString(), StringComparison.Ordinal);
        var choices = root.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([0, 1], choices.Select(c => c.GetProperty("index").GetInt32()));
        foreach (var c in choices)
        {
            Assert.Equal("stop", c.GetProperty("finish_reason").GetString());
            using var parsed = JsonDocument.Parse(c.GetProperty("text").GetString()!);
            Assert.Equal(JsonValueKind.Object, parsed.RootElement.ValueKind);
        }
        var usage = root.GetProperty("usage");
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Ignore_eos_keeps_generating_to_max_tokens_past_end_of_sequence()
    {
        // Token 2 is </s> in the llama-spm vocabulary: biased up, the model ends at once unless EOS is ignored.
        const string bias = ""","logit_bias":{"2":100},"max_tokens":6,"temperature":0""";
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", ChatBody(bias));
        Assert.Equal(200, status);
        var choice = body!.RootElement.GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.True(body.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32() <= 1);

        (status, body, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", ChatBody(bias + ""","ignore_eos":true"""));
        Assert.Equal(200, status);
        Assert.Equal("length", body!.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(6, body.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer"},"color":{"enum":["red","green"]}},"required":["ok","n","color"]}""")]
    [InlineData("""{"type":"object","properties":{"tags":{"type":"array","items":{"const":"x"},"maxItems":3},"v":{"anyOf":[{"type":"null"},{"type":"boolean"}]}},"required":["tags","v"]}""")]
    [InlineData("""{"$defs":{"flag":{"type":"boolean"}},"type":"object","properties":{"a":{"$ref":"#/$defs/flag"},"b":{"$ref":"#/$defs/flag"}},"required":["a","b"]}""")]
    public async Task Json_schema_output_parses_and_matches_the_schema(string schema)
    {
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/chat/completions",
            ChatBody($$$""","max_tokens":120,"temperature":0.7,"seed":11,"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{{{schema}}}}}"""));
        Assert.Equal(200, status);
        var choice = body!.RootElement.GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        using var output = JsonDocument.Parse(choice.GetProperty("message").GetProperty("content").GetString()!);
        using var s = JsonDocument.Parse(schema);
        AssertMatches(s.RootElement, output.RootElement, s.RootElement);
    }

    /// <summary>A small checker for the schema keywords used above (independent of the grammar converter).</summary>
    private static void AssertMatches(JsonElement schema, JsonElement value, JsonElement root)
    {
        if (schema.TryGetProperty("$ref", out var r))
        {
            var target = root;
            foreach (var part in r.GetString()![2..].Split('/'))
            {
                target = target.GetProperty(part);
            }
            AssertMatches(target, value, root);
            return;
        }
        if (schema.TryGetProperty("anyOf", out var any))
        {
            Assert.Contains(any.EnumerateArray(), alt =>
            {
                try
                {
                    AssertMatches(alt, value, root);
                    return true;
                }
                catch (Xunit.Sdk.XunitException)
                {
                    return false;
                }
            });
            return;
        }
        if (schema.TryGetProperty("const", out var c))
        {
            Assert.Equal(c.GetRawText(), value.GetRawText());
            return;
        }
        if (schema.TryGetProperty("enum", out var e))
        {
            Assert.Contains(value.GetRawText(), e.EnumerateArray().Select(x => x.GetRawText()));
            return;
        }
        switch (schema.GetProperty("type").GetString())
        {
            case "object":
                Assert.Equal(JsonValueKind.Object, value.ValueKind);
                foreach (var req in schema.GetProperty("required").EnumerateArray())
                {
                    Assert.True(value.TryGetProperty(req.GetString()!, out _), "missing " + req.GetString());
                }
                foreach (var p in value.EnumerateObject())
                {
                    AssertMatches(schema.GetProperty("properties").GetProperty(p.Name), p.Value, root);
                }
                break;
            case "array":
                Assert.Equal(JsonValueKind.Array, value.ValueKind);
                if (schema.TryGetProperty("maxItems", out var max))
                {
                    Assert.True(value.GetArrayLength() <= max.GetInt32());
                }
                foreach (var item in value.EnumerateArray())
                {
                    AssertMatches(schema.GetProperty("items"), item, root);
                }
                break;
            case "boolean":
                Assert.True(value.ValueKind is JsonValueKind.True or JsonValueKind.False);
                break;
            case "integer":
                Assert.True(value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _));
                break;
            case "null":
                Assert.Equal(JsonValueKind.Null, value.ValueKind);
                break;
            default:
                Assert.Fail("schema type not covered by the checker");
                break;
        }
    }

    [Fact]
    public async Task Errors_have_the_openai_shape_and_status()
    {
        var http = S.Http;
        var (s1, b1, _) = await Raw.PostAsync(http, "v1/chat/completions", "{\"model\":\"tiny\",");
        Assert.Equal(400, s1);
        Raw.AssertError(b1, null);

        var (s2, b2, _) = await Raw.PostAsync(http, "v1/chat/completions", "{\"model\":\"tiny\"}");
        Assert.Equal(400, s2);
        Raw.AssertError(b2, "messages", "missing_required_parameter");

        var (s3, b3, _) = await Raw.PostAsync(http, "v1/chat/completions", ChatBody(",\"max_tokens\":\"ten\""));
        Assert.Equal(400, s3);
        Raw.AssertError(b3, "max_tokens", "invalid_type");

        var (s4, b4, _) = await Raw.PostAsync(http, "v1/chat/completions", ChatBody().Replace("\"tiny\"", "\"gpt-9\"", StringComparison.Ordinal));
        Assert.Equal(404, s4);
        Raw.AssertError(b4, "model", "model_not_found");

        var (s5, b5, _) = await Raw.PostAsync(http, "v1/chat/completions", ChatBody(",\"max_tokens\":5000"));
        Assert.Equal(400, s5);
        Raw.AssertError(b5, "messages", "context_length_exceeded");

        var longPrompt = string.Join(" ", Enumerable.Repeat("word", 3000));
        var (s6, b6, _) = await Raw.PostAsync(http, "v1/completions", $$"""{"model":"tiny","prompt":"{{longPrompt}}"}""");
        Assert.Equal(400, s6);
        Raw.AssertError(b6, "messages", "context_length_exceeded");

        var (s7, b7, _) = await Raw.PostAsync(http, "v1/chat/completions", ChatBody(",\"logit_bias\":{\"99999999\":1}"));
        Assert.Equal(400, s7);
        Raw.AssertError(b7, "logit_bias");

        var (s8, b8) = await Raw.GetAsync(http, "v1/nothing-here");
        Assert.Equal(404, s8);
        Raw.AssertError(b8, null, "not_found");
    }

    [Fact]
    public async Task Sse_framing_is_data_events_then_usage_then_done()
    {
        var body = ChatBody(",\"max_tokens\":10,\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}", "Stream this");
        var (response, bytes) = await Raw.StreamAsync(S.Http, "v1/chat/completions", body);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var text = Encoding.UTF8.GetString(bytes);
        Assert.EndsWith("data: [DONE]\n\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\r", text, StringComparison.Ordinal);
        var events = text[..^2].Split("\n\n");
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = new List<JsonElement>();
        foreach (var e in events[..^1])
        {
            if (e.StartsWith(':'))
            {
                continue; // keep-alive comment
            }
            Assert.StartsWith("data: {", e, StringComparison.Ordinal);
            Assert.DoesNotContain("\n", e, StringComparison.Ordinal);
            chunks.Add(JsonDocument.Parse(e["data: ".Length..]).RootElement.Clone());
        }
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        var usageChunk = chunks[^1];
        Assert.Equal(0, usageChunk.GetProperty("choices").GetArrayLength());
        Assert.Equal(10, usageChunk.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.All(chunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind));
        var finish = chunks[..^1].Select(c => c.GetProperty("choices")[0].GetProperty("finish_reason")).Where(f => f.ValueKind != JsonValueKind.Null).ToList();
        Assert.Equal("length", Assert.Single(finish).GetString());
        var streamed = string.Concat(chunks[..^1].Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
            .Where(d => d.TryGetProperty("content", out _)).Select(d => d.GetProperty("content").GetString()));
        var (_, whole, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", ChatBody(",\"max_tokens\":10,\"temperature\":0", "Stream this"));
        Assert.Equal(whole!.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), streamed);
    }

    [Fact]
    public async Task Client_disconnect_cancels_the_sequence_and_frees_it()
    {
        var engine = S.Model.Engine;
        const string abortMetric = "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"abort\"}";
        const string lengthMetric = "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"length\"}";
        var abortsBefore = await Raw.MetricAsync(S.Http, abortMetric);
        // The tiny model writes its 1,900 tokens in well under a second: on a busy machine the request can end by length
        // before the disconnect reaches the engine. Such a try proves nothing and is repeated (a few at most).
        var cancelled = false;
        for (var attempt = 0; attempt < 5 && !cancelled; attempt++)
        {
            var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
            {
                Content = Raw.Json(ChatBody(",\"max_tokens\":1900,\"temperature\":0.9,\"ignore_eos\":true,\"stream\":true", "Go on forever")),
            };
            var lengthsBefore = await Raw.MetricAsync(S.Http, lengthMetric);
            using (var response = await S.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead))
            {
                var stream = await response.Content.ReadAsStreamAsync();
                var buffer = new byte[256];
                // Read until at least one token chunk arrived: the sequence is then running.
                var seen = new StringBuilder();
                while (!seen.ToString().Contains("\"content\":\"", StringComparison.Ordinal) || seen.ToString().Split("data: ").Length < 3)
                {
                    var n = await stream.ReadAsync(buffer);
                    Assert.True(n > 0, "stream ended early");
                    seen.Append(Encoding.UTF8.GetString(buffer, 0, n));
                }
            }
            // The response is disposed: the connection is gone mid-stream.
            await Raw.EventuallyAsync(() => Task.FromResult(engine.Stats.Running == 0 && engine.Stats.Waiting == 0), TimeSpan.FromSeconds(30), "the running gauge to return to zero");
            await Raw.EventuallyAsync(async () => await Raw.MetricAsync(S.Http, "vllm:num_requests_running{model_name=\"tiny\"}") == 0,
                TimeSpan.FromSeconds(10), "the exported gauge to return to zero");
            // The abort is counted when the request's handler unwinds, which can trail the engine's gauge; a request that
            // ran to its length is counted as finished instead.
            await Raw.EventuallyAsync(async () => await Raw.MetricAsync(S.Http, abortMetric) > abortsBefore || await Raw.MetricAsync(S.Http, lengthMetric) > lengthsBefore,
                TimeSpan.FromSeconds(10), "the request to be counted as aborted or finished");
            cancelled = await Raw.MetricAsync(S.Http, abortMetric) > abortsBefore;
        }

        Assert.True(cancelled, "no try was cancelled by the disconnect: every one ran to its length");
        // Freed: with nothing running, every cell still used belongs to cached prefixes only (a cancelled sequence is not
        // kept), whatever earlier requests left in the prefix cache.
        await Raw.EventuallyAsync(() => Task.FromResult(engine.Stats is { Running: 0 } st && st.KvCellsUsed == st.KvCellsReclaimable),
            TimeSpan.FromSeconds(10), "every used KV cell to be a cached prefix's");
    }

    [Fact]
    public async Task Metrics_export_vllm_families_labelled_with_the_model()
    {
        await Raw.PostAsync(S.Http, "v1/chat/completions", ChatBody(",\"max_tokens\":3"));
        var text = await S.Http.GetStringAsync("metrics");
        foreach (var family in new[]
        {
            "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:prefix_cache_queries_total",
            "vllm:prefix_cache_hits_total", "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
            "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds",
        })
        {
            Assert.Contains($"# TYPE {family} ", text, StringComparison.Ordinal);
        }
        Assert.True(await Raw.MetricAsync(S.Http, "vllm:generation_tokens_total{model_name=\"tiny\"}") >= 3);
        Assert.True(await Raw.MetricAsync(S.Http, "vllm:e2e_request_latency_seconds_count{model_name=\"tiny\"}") >= 1);
    }

    [Fact]
    public async Task Tokenize_detokenize_apply_template_and_request_ids()
    {
        var tokens = await S.TokenizeAsync("Hello world");
        Assert.NotEmpty(tokens);
        var (s, body, response) = await Raw.PostAsync(S.Http, "detokenize", JsonSerializer.Serialize(new { tokens }));
        Assert.Equal(200, s);
        Assert.Equal("Hello world", body!.RootElement.GetProperty("content").GetString()!.TrimStart());
        Assert.StartsWith("req-", response.Headers.GetValues("X-Request-Id").Single(), StringComparison.Ordinal);

        var req = new HttpRequestMessage(HttpMethod.Post, "apply-template") { Content = Raw.Json(ChatBody()) };
        req.Headers.Add("X-Request-Id", "my-trace-42");
        using var r = await S.Http.SendAsync(req);
        Assert.Equal("my-trace-42", r.Headers.GetValues("X-Request-Id").Single());
        using var applied = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        // The tiny model's GGUF has no template: ChatML is used, as llama-server does.
        Assert.Equal("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", applied.RootElement.GetProperty("prompt").GetString());

        var (s2, b2, _) = await Raw.PostAsync(S.Http, "detokenize", "{\"tokens\":[-1]}");
        Assert.Equal(400, s2);
        Raw.AssertError(b2, "tokens");
    }

    [Fact]
    public async Task Embeddings_return_one_vector_per_input()
    {
        var (s, body, _) = await Raw.PostAsync(S.Http, "v1/embeddings", "{\"model\":\"tiny\",\"input\":[\"a cat\",\"a dog\"]}");
        Assert.Equal(200, s);
        var data = body!.RootElement.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(2, data.Count);
        Assert.Equal(S.Model.Engine.Model.EmbeddingSize, data[0].GetProperty("embedding").GetArrayLength());
        var (s2, b2, _) = await Raw.PostAsync(S.Http, "v1/embeddings", "{\"model\":\"tiny\",\"input\":{}}");
        Assert.Equal(400, s2);
        Raw.AssertError(b2, "input");
    }
}
