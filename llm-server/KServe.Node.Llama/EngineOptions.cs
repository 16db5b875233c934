using System.ComponentModel;

namespace KServe.Node.Llama;

/// <summary>Which ggml compute backend to require.</summary>
public enum LlamaBackend
{
    /// <summary>CPU only (libggml-cpu-*.so).</summary>
    Cpu = 0,

    /// <summary>CUDA (libggml-cuda.so plus the CUDA runtime and driver); loading fails naming what is missing.</summary>
    Cuda = 1,
}

/// <summary>Element type of the KV cache.</summary>
#pragma warning disable CA1707 // ggml's own type name
public enum KvCacheType
{
    F16 = 1,
    Q8_0 = 8,
}
#pragma warning restore CA1707

/// <summary>Flash attention mode.</summary>
public enum FlashAttentionMode
{
    Auto = -1,
    Disabled = 0,
    Enabled = 1,
}

/// <summary>Settings of a <see cref="LlamaEngine"/>; validated by <see cref="Validate"/> at start.</summary>
public sealed record EngineOptions
{
    /// <summary>Path of the GGUF file.</summary>
    public string ModelPath { get; set; } = "";

    /// <summary>Name reported for the model; defaults to <c>general.name</c> or the file name.</summary>
    public string? ModelName { get; set; }

    [Description("folder of the llama.cpp libraries (default: $KSERVE_NODE_NATIVE_DIR, else .native/cpu above the app, else native/ beside it)")]
    public string? NativeLibraryDirectory { get; set; }

    [Description("ggml compute backend to require: cpu or cuda")]
    public LlamaBackend Backend { get; set; } = LlamaBackend.Cpu;

    [Description("KV cache size in tokens shared by all sequences; 0 = the model's training context")]
    public int ContextSize { get; set; } = 4096;

    [Description("sequences decoded at once (a request with n choices uses n)")]
    public int MaxParallelSequences { get; set; } = 8;

    [Description("finished prompts whose KV is kept as a prefix cache (least recently used evicted first)")]
    public int PrefixCacheSequences { get; set; } = 8;

    [Description("requests allowed to wait for admission; beyond that 429")]
    public int MaxQueuedRequests { get; set; } = 256;

    [Description("seconds a request may wait for admission before it fails with queue_timeout (503 with Retry-After); 0 = no limit. A preempted request, which already answered, never times out")]
    public int QueueTimeoutSeconds { get; set; }

    [Description("layers offloaded to the GPU: -1 = all (the KV cache then lives in GPU memory too), 0 = none")]
    public int GpuLayers { get; set; }

    [Description("flash attention: auto, enabled or disabled")]
    public FlashAttentionMode FlashAttention { get; set; } = FlashAttentionMode.Auto;

    [Description("element type of the KV cache: f16 or q8_0")]
    public KvCacheType KvCacheType { get; set; } = KvCacheType.F16;

    [Description("threads for single-token decoding (default: half the cores; a fully subscribed CPU slows decode)")]
    public int Threads { get; set; } = Math.Max(1, Environment.ProcessorCount / 2);

    [Description("threads for prompt batches; 0 = same as --threads")]
    public int BatchThreads { get; set; }

    [Description("how long ggml's CPU workers poll for the next computation before sleeping, 0-100 (llama-server's --poll); lower leaves more of a shared CPU to the HTTP side between decodes")]
    public int Poll { get; set; } = 50;

    [Description("logical batch size (most tokens per llama_decode)")]
    public int BatchSize { get; set; } = 2048;

    [Description("physical batch size")]
    public int MicroBatchSize { get; set; } = 512;

    [Description("tokens one engine step may submit, generating sequences first; 0 = --batch-size (long prompts are split so streams keep flowing)")]
    public int StepTokenBudget { get; set; }

    [Description("serve /v1/embeddings (an embedding context is created on first use)")]
    public bool EnableEmbeddings { get; set; } = true;

    [Description("context size of the embedding context (most tokens of one input)")]
    public int EmbeddingContextSize { get; set; } = 2048;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        static void Check(bool ok, string name, string why)
        {
            if (!ok)
            {
                throw new ArgumentException($"EngineOptions.{name} {why}", name);
            }
        }

        Check(!string.IsNullOrWhiteSpace(ModelPath), nameof(ModelPath), "is required");
        Check(File.Exists(ModelPath), nameof(ModelPath), $"'{ModelPath}' does not exist");
        Check(ContextSize >= 0, nameof(ContextSize), "must be >= 0");
        Check(MaxParallelSequences is >= 1 and <= 128, nameof(MaxParallelSequences), "must be 1..128");
        Check(PrefixCacheSequences is >= 0 and <= 128, nameof(PrefixCacheSequences), "must be 0..128");
        Check(MaxQueuedRequests >= 0, nameof(MaxQueuedRequests), "must be >= 0");
        Check(QueueTimeoutSeconds >= 0, nameof(QueueTimeoutSeconds), "must be >= 0 (0 = no limit)");
        Check(GpuLayers >= -1, nameof(GpuLayers), "must be -1 (all), 0 or a layer count");
        Check(Threads >= 1, nameof(Threads), "must be >= 1");
        Check(BatchThreads >= 0, nameof(BatchThreads), "must be >= 0");
        Check(Poll is >= 0 and <= 100, nameof(Poll), "must be 0..100");
        Check(BatchSize >= 1, nameof(BatchSize), "must be >= 1");
        Check(MicroBatchSize >= 1 && MicroBatchSize <= BatchSize, nameof(MicroBatchSize), "must be 1..BatchSize");
        Check(StepTokenBudget >= 0 && StepTokenBudget <= BatchSize, nameof(StepTokenBudget), "must be 0..BatchSize");
        Check(StepTokenBudget == 0 || StepTokenBudget >= MaxParallelSequences, nameof(StepTokenBudget), "must leave room for one token per parallel sequence");
        Check(BatchSize >= MaxParallelSequences, nameof(BatchSize), "must be >= MaxParallelSequences");
        Check(EmbeddingContextSize >= 8, nameof(EmbeddingContextSize), "must be >= 8");
        Check(Enum.IsDefined(KvCacheType), nameof(KvCacheType), "is not f16 or q8_0");
    }
}
