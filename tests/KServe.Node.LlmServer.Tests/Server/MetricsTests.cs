namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>/metrics scraped under load: vLLM's names and types, and values that move as the load says.</summary>
public sealed class MetricsTests
{
    private const string Labels = "{model_name=\"tiny\"}";

    [Fact]
    public async Task Vllm_families_are_present_and_queue_prefill_decode_and_kv_usage_follow_the_load()
    {
        // One running sequence: three concurrent requests make two of them wait in the queue.
        await using var s = await RunningServer.StartAsync(["--parallel", "1"]);
        var requests = Enumerable.Range(0, 3).Select(i => Raw.PostAsync(s.Http, "v1/completions",
            $"{{\"model\":\"tiny\",\"prompt\":\"Request number {i} asks for some tokens\",\"max_tokens\":24,\"ignore_eos\":true,\"temperature\":0}}")).ToList();
        foreach (var r in await Task.WhenAll(requests))
        {
            Assert.Equal(200, r.Status);
        }
        var text = await s.Http.GetStringAsync("metrics", TestContext.Current.CancellationToken);
        (string Name, string Type)[] families =
        [
            ("vllm:num_preemptions_total", "counter"), ("vllm:gpu_cache_usage_perc", "gauge"), ("vllm:kv_cache_usage_perc", "gauge"),
            ("vllm:time_per_output_token_seconds", "histogram"), ("vllm:request_time_per_output_token_seconds", "histogram"),
            ("vllm:request_queue_time_seconds", "histogram"), ("vllm:request_prefill_time_seconds", "histogram"),
            ("vllm:request_decode_time_seconds", "histogram"), ("vllm:num_requests_running", "gauge"), ("vllm:num_requests_waiting", "gauge"),
            ("vllm:time_to_first_token_seconds", "histogram"), ("vllm:e2e_request_latency_seconds", "histogram"),
            ("vllm:prompt_tokens_total", "counter"), ("vllm:generation_tokens_total", "counter"), ("vllm:request_success_total", "counter"),
        ];
        foreach (var (name, type) in families)
        {
            Assert.Contains($"# TYPE {name} {type}\n", text, StringComparison.Ordinal);
        }

        foreach (var phase in new[] { "queue", "prefill", "decode" })
        {
            Assert.Equal(3, await Raw.MetricAsync(s.Http, $"vllm:request_{phase}_time_seconds_count{Labels}"));
        }
        // Two requests waited for the one slot: the queue time adds up to at least one other request's decode.
        Assert.True(await Raw.MetricAsync(s.Http, $"vllm:request_queue_time_seconds_sum{Labels}") > 0);
        Assert.True(await Raw.MetricAsync(s.Http, $"vllm:request_queue_time_seconds_sum{Labels}") >= await Raw.MetricAsync(s.Http, $"vllm:request_decode_time_seconds_sum{Labels}") / 3);
        Assert.Equal(3, await Raw.MetricAsync(s.Http, $"vllm:time_per_output_token_seconds_count{Labels}"));
        Assert.Equal(s.Model.Engine.Stats.Preemptions, await Raw.MetricAsync(s.Http, $"vllm:num_preemptions_total{Labels}"));
        Assert.Equal(3 * 24, await Raw.MetricAsync(s.Http, $"vllm:generation_tokens_total{Labels}"));

        // Idle: the finished prompts stay cached (cells in use) but count as free, as vLLM counts refcount-0 blocks.
        await Raw.EventuallyAsync(() => Task.FromResult(s.Model.Engine.Stats.Running == 0), TimeSpan.FromSeconds(10), "the engine to go idle");
        Assert.True(s.Model.Engine.Stats.KvCellsUsed > 0);
        Assert.Equal(0, await Raw.MetricAsync(s.Http, $"vllm:kv_cache_usage_perc{Labels}"));
        Assert.Equal(0, await Raw.MetricAsync(s.Http, $"vllm:gpu_cache_usage_perc{Labels}"));
    }

    [Fact]
    public async Task Preemptions_under_KV_pressure_are_counted_and_every_request_still_completes()
    {
        // 8 running sequences on a 1024-cell cache, 12 requests of ~150 prompt tokens and 120 output tokens each:
        // each fits alone, together they need several times the cache, so the engine must preempt and recompute.
        await using var s = await RunningServer.StartAsync(["--ctx-size", "1024", "--parallel", "8", "--prefix-cache-sequences", "8"]);
        Assert.Equal(0, await Raw.MetricAsync(s.Http, $"vllm:num_preemptions_total{Labels}"));
        var requests = Enumerable.Range(0, 12).Select(i => Raw.PostAsync(s.Http, "v1/completions",
            $"{{\"model\":\"tiny\",\"prompt\":\"Request {i}: {string.Join(' ', Enumerable.Range(0, 60).Select(w => $"w{(w * 7 + i * 13) % 97}"))}\","
            + "\"max_tokens\":120,\"ignore_eos\":true,\"temperature\":0}")).ToList();
        foreach (var (status, body, _) in await Task.WhenAll(requests))
        {
            Assert.True(status == 200, body?.RootElement.GetRawText());
            Assert.Equal(120, body!.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }
        var preemptions = await Raw.MetricAsync(s.Http, $"vllm:num_preemptions_total{Labels}");
        Assert.True(preemptions > 0, "the workload must have preempted");
        Assert.Equal(s.Model.Engine.Stats.Preemptions, preemptions);
        Assert.Equal(12, await Raw.MetricAsync(s.Http, $"vllm:request_success_total{{model_name=\"tiny\",finished_reason=\"length\"}}"));
        TestContext.Current.TestOutputHelper?.WriteLine($"12 requests, {preemptions} preemptions, all 120 tokens each");
    }
}
