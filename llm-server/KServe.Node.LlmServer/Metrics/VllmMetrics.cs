using KServe.Node.Hosting;

namespace KServe.Node.LlmServer.Metrics;

/// <summary>A point-in-time view of the engine for the gauges.</summary>
internal readonly record struct EngineGauges(int Running, int Waiting, double KvCacheUsage, long Preemptions = 0);

/// <summary>
/// vLLM-compatible metric families (<c>vllm:*</c>), labelled with the served model name, so that dashboards,
/// autoscalers and inference gateways written for vLLM read llm-server unchanged. prometheus-net refuses
/// <c>:</c> in names, so these are written by the shared text-format writer after its own families.
/// Bucket bounds are vLLM's.
/// </summary>
internal sealed class VllmMetrics : IMetricsExposition
{
    internal static readonly double[] TtftBuckets =
        [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];

    internal static readonly double[] ItlBuckets =
        [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];

    internal static readonly double[] E2eBuckets =
        [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

    /// <summary>vLLM's request-phase buckets (queue, prefill, decode).</summary>
    internal static readonly double[] PhaseBuckets =
        [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

    internal static readonly double[] TpotBuckets =
        [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];

    private readonly string _modelName;
    private readonly Func<EngineGauges> _gauges;
    private long _promptTokens;
    private long _generationTokens;
    private long _prefixQueries;
    private long _prefixHits;
    private readonly Dictionary<string, long> _success = new(StringComparer.Ordinal) { ["stop"] = 0, ["length"] = 0, ["abort"] = 0 };
    private readonly object _lock = new();

    public VllmMetrics(string modelName, Func<EngineGauges> gauges)
    {
        _modelName = modelName;
        _gauges = gauges;
        Ttft = new Histogram(TtftBuckets);
        Itl = new Histogram(ItlBuckets);
        E2e = new Histogram(E2eBuckets);
        Tpot = new Histogram(TpotBuckets);
        Queue = new Histogram(PhaseBuckets);
        Prefill = new Histogram(PhaseBuckets);
        Decode = new Histogram(PhaseBuckets);
    }

    public Histogram Tpot { get; }
    public Histogram Queue { get; }
    public Histogram Prefill { get; }
    public Histogram Decode { get; }

    /// <summary>Records the engine's phase timings of a finished request (its first choice's).</summary>
    public void Phases(double queueSeconds, double prefillSeconds, double decodeSeconds, int generatedTokens)
    {
        Queue.Observe(queueSeconds);
        Prefill.Observe(prefillSeconds);
        Decode.Observe(decodeSeconds);
        if (generatedTokens > 1)
        {
            Tpot.Observe(decodeSeconds / (generatedTokens - 1));
        }
    }

    public Histogram Ttft { get; }
    public Histogram Itl { get; }
    public Histogram E2e { get; }

    /// <summary>Records a finished request: tokens, prefix-cache use (in tokens, as vLLM counts) and the finish reason.</summary>
    public void RequestFinished(int promptTokens, int cachedTokens, int generatedTokens, string finishReason)
    {
        Interlocked.Add(ref _promptTokens, promptTokens);
        Interlocked.Add(ref _generationTokens, generatedTokens);
        Interlocked.Add(ref _prefixQueries, promptTokens);
        Interlocked.Add(ref _prefixHits, cachedTokens);
        lock (_lock)
        {
            _success[finishReason] = _success.GetValueOrDefault(finishReason) + 1;
        }
    }

    public void Write(PrometheusText writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        KeyValuePair<string, string>[] labels = [new("model_name", _modelName)];
        var g = _gauges();
        writer.Family("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.")
            .Sample("vllm:num_requests_running", labels, g.Running);
        writer.Family("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.")
            .Sample("vllm:num_requests_waiting", labels, g.Waiting);
        writer.Family("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.")
            .Sample("vllm:kv_cache_usage_perc", labels, g.KvCacheUsage);
        // The name before vLLM 0.10; EPP, KEDA and HPA configurations written then still read it.
        writer.Family("vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage.")
            .Sample("vllm:gpu_cache_usage_perc", labels, g.KvCacheUsage);
        Counter(writer, "vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels, g.Preemptions);
        Counter(writer, "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", labels, Interlocked.Read(ref _prefixQueries));
        Counter(writer, "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", labels, Interlocked.Read(ref _prefixHits));
        Counter(writer, "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, Interlocked.Read(ref _promptTokens));
        Counter(writer, "vllm:generation_tokens", "Number of generation tokens processed.", labels, Interlocked.Read(ref _generationTokens));
        writer.Family("vllm:request_success_total", "counter", "Count of successfully processed requests.");
        lock (_lock)
        {
            foreach (var (reason, count) in _success)
            {
                writer.Sample("vllm:request_success_total", [labels[0], new("finished_reason", reason)], count);
            }
        }
        Ttft.Write(writer, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels);
        Itl.Write(writer, "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", labels);
        E2e.Write(writer, "vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.", labels);
        Tpot.Write(writer, "vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.", labels);
        Tpot.Write(writer, "vllm:request_time_per_output_token_seconds", "Histogram of time_per_output_token_seconds per request.", labels);
        Queue.Write(writer, "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", labels);
        Prefill.Write(writer, "vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", labels);
        Decode.Write(writer, "vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", labels);
    }

    private static void Counter(PrometheusText writer, string name, string help, KeyValuePair<string, string>[] labels, long value) =>
        writer.Family(name + "_total", "counter", help).Sample(name + "_total", labels, value);

    /// <summary>A fixed-bucket histogram safe for concurrent observation.</summary>
    internal sealed class Histogram(double[] bounds)
    {
        private readonly long[] _counts = new long[bounds.Length + 1];
        private readonly object _lock = new();
        private double _sum;

        public void Observe(double value)
        {
            var i = Array.BinarySearch(bounds, value);
            // le buckets: a value equal to a bound belongs to that bound's bucket.
            var index = i >= 0 ? i : ~i;
            lock (_lock)
            {
                _counts[index]++;
                _sum += value;
            }
        }

        public long Count
        {
            get
            {
                lock (_lock)
                {
                    return _counts.Sum();
                }
            }
        }

        public void Write(PrometheusText writer, string name, string help, KeyValuePair<string, string>[] labels)
        {
            long[] counts;
            double sum;
            lock (_lock)
            {
                counts = (long[])_counts.Clone();
                sum = _sum;
            }
            writer.Family(name, "histogram", help).Histogram(name, labels, bounds, counts, sum);
        }
    }
}
