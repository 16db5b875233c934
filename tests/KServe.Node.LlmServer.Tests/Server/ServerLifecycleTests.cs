using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>Tests that need a server of their own: readiness, authentication and limits, overload, templates.</summary>
public sealed class ServerLifecycleTests
{
    private const string Chat = """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":4}""";

    [Fact]
    public async Task Health_routes_answer_503_until_the_model_is_loaded_then_200()
    {
        await using var s = await RunningServer.StartAsync(openGate: false, waitReady: false);
        Assert.Equal(200, (await Raw.GetAsync(s.Http, "v2/health/live")).Status);
        var (ready, readyBody) = await Raw.GetAsync(s.Http, "v2/health/ready");
        Assert.Equal(503, ready);
        Assert.False(readyBody!.RootElement.GetProperty("ready").GetBoolean());
        Assert.Equal(503, (await Raw.GetAsync(s.Http, "v2/models/tiny/ready")).Status);
        Assert.Equal(404, (await Raw.GetAsync(s.Http, "v2/models/other/ready")).Status);
        Assert.Equal(503, (await Raw.GetAsync(s.Http, "health")).Status);
        var (card, cardBody) = await Raw.GetAsync(s.Http, "v1/models/tiny");
        Assert.Equal(503, card);
        Assert.False(cardBody!.RootElement.GetProperty("ready").GetBoolean());
        var (chat, chatBody, response) = await Raw.PostAsync(s.Http, "v1/chat/completions", Chat);
        Assert.Equal(503, chat);
        Assert.NotNull(response.Headers.RetryAfter);
        Raw.AssertError(chatBody, null, "model_not_ready", "server_error");

        s.OpenGate();
        await s.Model.Loaded.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(200, (await Raw.GetAsync(s.Http, "v2/health/ready")).Status);
        var (modelReady, modelReadyBody) = await Raw.GetAsync(s.Http, "v2/models/tiny/ready");
        Assert.Equal(200, modelReady);
        Assert.Equal("tiny", modelReadyBody!.RootElement.GetProperty("name").GetString());
        Assert.Equal(200, (await Raw.GetAsync(s.Http, "health")).Status);
        var (card2, card2Body) = await Raw.GetAsync(s.Http, "openai/v1/models/tiny");
        Assert.Equal(200, card2);
        var c = card2Body!.RootElement;
        Assert.Equal("tiny", c.GetProperty("id").GetString());
        Assert.Equal("model", c.GetProperty("object").GetString());
        Assert.Equal("tiny", c.GetProperty("name").GetString());
        Assert.True(c.GetProperty("ready").GetBoolean());
        Assert.True(c.GetProperty("created").GetInt64() > 0);
        Assert.Equal(200, (await Raw.PostAsync(s.Http, "v1/chat/completions", Chat)).Status);
    }

    [Fact]
    public async Task Api_keys_cors_size_limit_and_missing_pooling_give_clear_4xx()
    {
        await using var s = await RunningServer.StartAsync(["--api-key", "sekrit", "--cors-origin", "http://app.example", "--max-request-bytes", "4096", "--no-embeddings"]);
        var (noKey, noKeyBody, _) = await Raw.PostAsync(s.Http, "v1/chat/completions", Chat);
        Assert.Equal(401, noKey);
        Raw.AssertError(noKeyBody, null, "invalid_api_key", "authentication_error");
        var wrong = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        wrong.Headers.Authorization = new("Bearer", "nope");
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Http.SendAsync(wrong)).StatusCode);
        // Probes and metrics stay open.
        Assert.Equal(200, (await Raw.GetAsync(s.Http, "v2/health/ready")).Status);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("metrics")).StatusCode);

        s.Http.DefaultRequestHeaders.Authorization = new("Bearer", "sekrit");
        Assert.Equal(200, (await Raw.PostAsync(s.Http, "v1/chat/completions", Chat)).Status);

        var huge = JsonSerializer.Serialize(new { model = "tiny", messages = new[] { new { role = "user", content = new string('x', 10_000) } } });
        var (tooBig, tooBigBody, _) = await Raw.PostAsync(s.Http, "v1/chat/completions", huge);
        Assert.Equal(413, tooBig);
        Raw.AssertError(tooBigBody, null, "request_too_large");

        var (emb, embBody, _) = await Raw.PostAsync(s.Http, "v1/embeddings", "{\"model\":\"tiny\",\"input\":\"x\"}");
        Assert.Equal(400, emb);
        Raw.AssertError(embBody, "model");

        var preflight = new HttpRequestMessage(HttpMethod.Options, "v1/chat/completions");
        preflight.Headers.Add("Origin", "http://app.example");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
        var pre = await s.Http.SendAsync(preflight);
        Assert.True(pre.IsSuccessStatusCode);
        Assert.Equal("http://app.example", pre.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task A_flood_beyond_the_queue_gets_429_with_retry_after_and_the_rest_succeed()
    {
        await using var s = await RunningServer.StartAsync(["--parallel", "1", "--max-queue", "1", "--prefix-cache-sequences", "1"]);
        var body = """{"model":"tiny","messages":[{"role":"user","content":"flood"}],"max_tokens":64,"temperature":0.5}""";
        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => Raw.PostAsync(s.Http, "v1/chat/completions", body)));
        var rejected = results.Where(r => r.Status == 429).ToList();
        Assert.NotEmpty(rejected);
        Assert.Contains(results, r => r.Status == 200);
        Assert.All(results, r => Assert.True(r.Status is 200 or 429, $"status {r.Status}"));
        foreach (var r in rejected)
        {
            Assert.NotNull(r.Response.Headers.RetryAfter);
            Raw.AssertError(r.Body, null, "queue_full", "rate_limit_error");
        }
        // The server keeps serving once the flood has passed.
        Assert.Equal(200, (await Raw.PostAsync(s.Http, "v1/chat/completions", body)).Status);
    }

    [Fact]
    public async Task A_request_waiting_past_the_queue_timeout_gets_503_with_retry_after_streamed_or_not()
    {
        await using var s = await RunningServer.StartAsync(["--parallel", "1", "--ctx-size", "32768", "--queue-timeout", "1"]);
        // One long request holds the only sequence until the test ends it.
        using var hold = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var holder = s.Http.PostAsync("v1/completions", Raw.Json("""{"model":"tiny","prompt":"hold","max_tokens":32000,"ignore_eos":true}"""), hold.Token);
        await Raw.EventuallyAsync(() => Task.FromResult(s.Model.Engine.Stats.Running == 1), TimeSpan.FromSeconds(10), "the long request to run");

        var waiting = Raw.PostAsync(s.Http, "v1/completions", """{"model":"tiny","prompt":"wait","max_tokens":4}""");
        var streamed = Raw.StreamAsync(s.Http, "v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"wait"}],"max_tokens":4,"stream":true}""");
        var (status, body, response) = await waiting;
        Assert.Equal(503, status);
        Assert.NotNull(response.Headers.RetryAfter);
        Raw.AssertError(body, null, "queue_timeout", "server_error");
        // A stream that never got a token is refused the same way, before any event: the SDKs retry it.
        var (streamResponse, streamBody) = await streamed;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, streamResponse.StatusCode);
        Assert.NotNull(streamResponse.Headers.RetryAfter);
        using (var doc = JsonDocument.Parse(streamBody))
        {
            Assert.Equal("queue_timeout", doc.RootElement.GetProperty("error").GetProperty("code").GetString());
        }
        Assert.Equal(1, s.Model.Engine.Stats.Running);
        Assert.False(holder.IsCompleted, "the running request is untouched");
        await hold.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => holder);
        await Raw.EventuallyAsync(() => Task.FromResult(s.Model.Engine.Stats.Running == 0), TimeSpan.FromSeconds(10), "the cancelled request to free its sequence");
    }

    [Fact]
    public async Task Embeddings_count_against_the_queue_and_a_full_queue_refuses_every_route_with_429()
    {
        await using var s = await RunningServer.StartAsync(["--parallel", "1", "--max-queue", "0", "--ctx-size", "32768"]);
        using var hold = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var holder = s.Http.PostAsync("v1/completions", Raw.Json("""{"model":"tiny","prompt":"hold","max_tokens":32000,"ignore_eos":true}"""), hold.Token);
        await Raw.EventuallyAsync(() => Task.FromResult(s.Model.Engine.Stats.Running == 1), TimeSpan.FromSeconds(10), "the long request to run");
        Assert.True(s.Model.Engine.QueueFull);
        foreach (var (route, body) in new[]
        {
            ("v1/embeddings", """{"model":"tiny","input":["one","two"]}"""),
            ("v1/chat/completions", Chat),
            ("v1/completions", """{"model":"tiny","prompt":"x","max_tokens":1}"""),
        })
        {
            var (status, doc, response) = await Raw.PostAsync(s.Http, route, body);
            Assert.True(status == 429, $"{route}: {status}");
            Assert.NotNull(response.Headers.RetryAfter);
            Raw.AssertError(doc, null, "queue_full", "rate_limit_error");
        }
        await hold.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => holder);
        await Raw.EventuallyAsync(() => Task.FromResult(!s.Model.Engine.QueueFull), TimeSpan.FromSeconds(10), "the queue to drain");
        var (ok, embeddings, _) = await Raw.PostAsync(s.Http, "v1/embeddings", """{"model":"tiny","input":["one","two"]}""");
        Assert.Equal(200, ok);
        Assert.Equal(2, embeddings!.RootElement.GetProperty("data").GetArrayLength());
        // The embeddings request left the queue when it ended: a generation request fits again.
        Assert.False(s.Model.Engine.QueueFull);
        Assert.Equal(200, (await Raw.PostAsync(s.Http, "v1/completions", """{"model":"tiny","prompt":"x","max_tokens":1}""")).Status);
    }

    [Fact]
    public async Task Apply_template_matches_the_hub_renderer_for_a_real_template()
    {
        var templateFile = Path.Combine(RepoPaths.Templates, "Qwen-Qwen2.5-7B-Instruct.jinja");
        await using var s = await RunningServer.StartAsync(["--chat-template-file", templateFile]);
        var messages = new JsonArray(
            new JsonObject { ["role"] = "system", ["content"] = "Be kind." },
            new JsonObject { ["role"] = "user", ["content"] = "Hi there" },
            new JsonObject { ["role"] = "assistant", ["content"] = "Hello!" },
            new JsonObject { ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "What now?" }) });
        var (status, body, _) = await Raw.PostAsync(s.Http, "apply-template", new JsonObject { ["model"] = "tiny", ["messages"] = messages.DeepClone() }.ToJsonString());
        Assert.Equal(200, status);
        var ours = body!.RootElement.GetProperty("prompt").GetString();

        // The reference sees the same conversation as the server passes it: content parts joined, the model's tokens.
        var refMessages = messages.DeepClone().AsArray();
        refMessages[3]!["content"] = "What now?";
        var input = new JsonObject
        {
            ["jinjaModule"] = RepoPaths.JinjaModule,
            ["templates"] = new JsonObject { ["t"] = await File.ReadAllTextAsync(templateFile) },
            ["cases"] = new JsonArray(new JsonObject
            {
                ["messages"] = refMessages,
                ["add_generation_prompt"] = true,
                ["bos_token"] = s.Model.Engine.Model.BosToken,
                ["eos_token"] = s.Model.Engine.Model.EosToken,
                ["tools"] = new JsonArray(),
            }),
        };
        var json = await RepoPaths.RunNodeAsync(Path.Combine(AppContext.BaseDirectory, "Templates", "render-reference.mjs"), input.ToJsonString(), TestContext.Current.CancellationToken);
        using var reference = JsonDocument.Parse(json);
        var r = reference.RootElement.GetProperty("t")[0];
        Assert.True(r.GetProperty("ok").GetBoolean());
        Assert.Equal(r.GetProperty("text").GetString(), ours);
    }
}
