using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using KServe.Node.Gguf;
using KServe.Node.Llama;
using Microsoft.Extensions.Logging;

// Engine-level throughput: S concurrent greedy streams of N tokens each (EOS ignored), prompts of P distinct
// tokens, warm-up excluded. One JSON line per stream count. Runs the same on CPU and CUDA so the figures compare.
var opts = Args.Parse(args);
var model = opts.Get("model", Path.Combine(Path.GetTempPath(), "kserve-node-bench-60m-f16.gguf"));
if (!File.Exists(model))
{
    var vocab = opts.Get("vocab", "");
    if (vocab.Length == 0)
    {
        Console.Error.WriteLine($"'{model}' does not exist; pass --vocab path/to/ggml-vocab-llama-spm.gguf to generate it");
        return 2;
    }

    var spec = new GeneratedModelSpec
    {
        Layers = opts.Int("layers", 8), EmbeddingLength = opts.Int("embd", 512), FeedForwardLength = opts.Int("ff", 1536),
        Heads = opts.Int("heads", 8), HeadsKv = opts.Int("heads-kv", 8), ContextLength = 8192,
        WeightType = opts.Get("weights", "f16") == "f32" ? GeneratedWeightType.F32 : GeneratedWeightType.F16,
    };
    var facts = TestModelGenerator.GenerateLlama(model, vocab, spec);
    Console.Error.WriteLine($"generated {model}: {facts.ParameterCount / 1e6:F1}M parameters, {facts.Quantization}");
}

var streams = opts.Get("streams", "1,8,32").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
var tokens = opts.Int("tokens", 128);
var promptTokens = opts.Int("prompt", 32);
var options = new EngineOptions
{
    ModelPath = model,
    NativeLibraryDirectory = opts.Get("native", "") is { Length: > 0 } d ? d : null,
    Backend = opts.Get("backend", "cpu") == "cuda" ? LlamaBackend.Cuda : LlamaBackend.Cpu,
    GpuLayers = opts.Int("gpu-layers", 0),
    ContextSize = opts.Int("ctx", 8192),
    MaxParallelSequences = Math.Max(streams.Max(), 1),
    PrefixCacheSequences = 0,
    Threads = opts.Int("threads", 2),
    BatchSize = opts.Int("batch", 2048),
    MicroBatchSize = opts.Int("ubatch", 512),
    FlashAttention = opts.Get("fa", "auto") switch { "on" => FlashAttentionMode.Enabled, "off" => FlashAttentionMode.Disabled, _ => FlashAttentionMode.Auto },
    KvCacheType = opts.Get("kv", "f16") == "q8_0" ? KvCacheType.Q8_0 : KvCacheType.F16,
};
using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole().SetMinimumLevel(opts.Get("log", "warn") == "debug" ? LogLevel.Debug : LogLevel.Warning));
await using var engine = LlamaEngine.Start(options, loggerFactory);
var rng = new Random(1);
int[] Prompt() => Enumerable.Range(0, promptTokens).Select(_ => rng.Next(100, engine.Model.VocabSize)).ToArray();

async Task<(double Seconds, long Tokens, double TtftP50)> Round(int s, int n)
{
    var sw = Stopwatch.StartNew();
    var handles = Enumerable.Range(0, s).Select(_ => engine.Submit(new GenerationRequest(Prompt(), SamplingParams.Greedy, n, [], IgnoreEos: true))).ToArray();
    var ttfts = new double[s];
    long total = 0;
    await Task.WhenAll(handles.Select(async (h, i) =>
    {
        var first = true;
        await foreach (var e in h.Events.ReadAllAsync())
        {
            if (e is TokenEvent && first)
            {
                ttfts[i] = sw.Elapsed.TotalMilliseconds;
                first = false;
            }

            if (e is FinishedEvent f)
            {
                if (f.CompletionTokens != n)
                {
                    throw new InvalidOperationException($"stream produced {f.CompletionTokens} tokens, expected {n}");
                }

                Interlocked.Add(ref total, f.CompletionTokens);
            }
        }
    }));
    Array.Sort(ttfts);
    return (sw.Elapsed.TotalSeconds, total, ttfts[s / 2]);
}

await Round(Math.Min(4, streams.Max()), 8); // warm-up (graph allocation, CUDA kernels JIT, caches)
foreach (var s in streams)
{
    var (seconds, total, ttft) = await Round(s, tokens);
    var gpu = LlamaEngine.Devices().Where(dev => dev.Kind == "Gpu").Select(dev => (dev.TotalBytes - dev.FreeBytes) / (1024.0 * 1024.0)).DefaultIfEmpty(0).First();
    Json.Line(
        ("bench", "engine-decode"), ("backend", options.Backend.ToString().ToLowerInvariant()), ("gpu_layers", options.GpuLayers),
        ("params_m", Math.Round(engine.Model.Facts.ParameterCount / 1e6, 1)), ("weights", engine.Model.Facts.Quantization),
        ("streams", s), ("tokens_per_stream", tokens), ("prompt_tokens", promptTokens), ("threads", options.Threads),
        ("seconds", Math.Round(seconds, 3)), ("output_tokens_per_s", Math.Round(total / seconds, 1)),
        ("ttft_p50_ms", Math.Round(ttft, 1)), ("gpu_mem_used_mib", Math.Round(gpu, 0)), ("decode_calls", engine.Stats.DecodeCalls));
}

return 0;

internal sealed class Args(Dictionary<string, string> values)
{
    public static Args Parse(string[] args)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            d[args[i].TrimStart('-')] = args[i + 1];
        }

        return new Args(d);
    }

    public string Get(string key, string fallback) => values.TryGetValue(key, out var v) ? v : fallback;

    public int Int(string key, int fallback) => values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}

internal static class Json
{
    // Utf8JsonWriter keeps the benchmark trimmable (no reflection-based serialisation).
    public static void Line(params (string Key, object Value)[] fields)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            foreach (var (k, v) in fields)
            {
                switch (v)
                {
                    case string str: w.WriteString(k, str); break;
                    case int i: w.WriteNumber(k, i); break;
                    case long l: w.WriteNumber(k, l); break;
                    case double d: w.WriteNumber(k, d); break;
                    default: w.WriteString(k, v.ToString()); break;
                }
            }

            w.WriteEndObject();
        }

        Console.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
