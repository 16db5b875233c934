using System.Threading.Channels;

namespace KServe.Node.Llama;

/// <summary>Sampling settings of one request. Temperature 0 = greedy.</summary>
public sealed record SamplingParams
{
    public float Temperature { get; init; } = 1.0f;
    public float TopP { get; init; } = 1.0f;

    /// <summary>0 = disabled.</summary>
    public int TopK { get; init; }
    public float MinP { get; init; }

    /// <summary>Locally typical sampling's mass (llama.cpp's typical_p); 1 = disabled.</summary>
    public float TypicalP { get; init; } = 1.0f;

    /// <summary>Null = a random seed.</summary>
    public uint? Seed { get; init; }

    /// <summary>1 = disabled.</summary>
    public float RepetitionPenalty { get; init; } = 1.0f;
    public float PresencePenalty { get; init; }
    public float FrequencyPenalty { get; init; }

    /// <summary>How many recent tokens the penalties look at.</summary>
    public int PenaltyLastN { get; init; } = 64;

    /// <summary>Token id → bias added to its logit (-inf or a large negative value bans it).</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }

    /// <summary>Greedy decoding.</summary>
    public static SamplingParams Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        static void Check(bool ok, string name, string why)
        {
            if (!ok)
            {
                throw new ArgumentException($"{name} {why}", name);
            }
        }

        Check(float.IsFinite(Temperature) && Temperature >= 0, "temperature", "must be >= 0");
        Check(TopP is > 0 and <= 1, "top_p", "must be in (0, 1]");
        Check(TopK >= 0, "top_k", "must be >= 0");
        Check(MinP is >= 0 and <= 1, "min_p", "must be in [0, 1]");
        Check(TypicalP is > 0 and <= 1, "typical_p", "must be in (0, 1]");
        Check(float.IsFinite(RepetitionPenalty) && RepetitionPenalty > 0, "repetition_penalty", "must be > 0");
        Check(float.IsFinite(PresencePenalty) && PresencePenalty is >= -2 and <= 2, "presence_penalty", "must be in [-2, 2]");
        Check(float.IsFinite(FrequencyPenalty) && FrequencyPenalty is >= -2 and <= 2, "frequency_penalty", "must be in [-2, 2]");
        Check(PenaltyLastN >= -1, "penalty_last_n", "must be >= -1");
    }
}

/// <summary>One generation request: the prompt's tokens and how to continue it.</summary>
/// <param name="PromptTokens">Tokenized prompt (at least one token).</param>
/// <param name="Sampling">Sampling settings.</param>
/// <param name="MaxTokens">Maximum tokens to generate per choice.</param>
/// <param name="Stop">Stop strings: generation ends before the first occurrence, which is never streamed.</param>
/// <param name="N">Number of choices; they share the prompt's KV.</param>
/// <param name="TopLogprobs">-1 = no logprobs; 0 = the chosen token's logprob; k &gt; 0 = also the k most likely tokens.</param>
/// <param name="Grammar">GBNF grammar (root rule <c>root</c>) constraining the output.</param>
/// <param name="IgnoreEos">Keep generating past end-of-generation tokens (benchmarks).</param>
/// <param name="CancellationToken">Cancels the request (e.g. client disconnect): its sequences and KV are freed at the next step.</param>
/// <param name="MinTokens">End-of-generation and <paramref name="StopTokenIds"/> cannot be sampled before this many tokens (vLLM's min_tokens).</param>
/// <param name="StopTokenIds">Tokens that end the choice like end-of-generation (not written to the text).</param>
/// <param name="RenderSpecialTokens">Write control tokens other than end-of-generation into the text (tool call markers such as <c>[TOOL_CALLS]</c> are control tokens in some vocabularies).</param>
public sealed record GenerationRequest(
    int[] PromptTokens,
    SamplingParams Sampling,
    int MaxTokens,
    IReadOnlyList<string> Stop,
    int N = 1,
    int TopLogprobs = -1,
    string? Grammar = null,
    bool IgnoreEos = false,
    bool RenderSpecialTokens = false,
    int MinTokens = 0,
    IReadOnlyList<int>? StopTokenIds = null,
    CancellationToken CancellationToken = default);

/// <summary>Why a choice ended.</summary>
public enum FinishReason
{
    /// <summary>End-of-generation token or a stop string.</summary>
    Stop,

    /// <summary>MaxTokens reached, or the context is full.</summary>
    Length,

    /// <summary>The request was cancelled.</summary>
    Cancelled,

    /// <summary>An error ended it (an <see cref="ErrorEvent"/> came first).</summary>
    Error,
}

/// <summary>An alternative token with its log-probability.</summary>
public sealed record TokenLogprob(int TokenId, string Text, float Logprob);

/// <summary>A prompt token's log-probability given the tokens before it, and the most likely tokens there.</summary>
public sealed record PromptTokenLogprob(int TokenId, float Logprob, IReadOnlyList<TokenLogprob> Top);

/// <summary>An event of a generation stream.</summary>
public abstract record GenerationEvent(int Choice);

/// <summary>One generated token. <paramref name="Text"/> is the text that became final with it: possibly empty
/// (held back while it may begin a stop string or an incomplete UTF-8 character) or longer than the token.</summary>
public sealed record TokenEvent(int Choice, int TokenId, string Text, float? Logprob, IReadOnlyList<TokenLogprob>? TopLogprobs) : GenerationEvent(Choice);

/// <summary>A choice ended. Every choice ends with exactly one of these.</summary>
/// <param name="Choice">Choice index (0..N-1).</param>
/// <param name="Reason">Why it ended.</param>
/// <param name="PromptTokens">Prompt length in tokens.</param>
/// <param name="CachedPromptTokens">Prompt tokens reused from the prefix cache (not computed again).</param>
/// <param name="CompletionTokens">Tokens generated for this choice.</param>
/// <param name="StopString">The stop string that ended it, if any.</param>
/// <param name="PromptTokensDecoded">Prompt tokens actually submitted to llama_decode for this choice (prompt minus reused prefix).</param>
public sealed record FinishedEvent(int Choice, FinishReason Reason, int PromptTokens, int CachedPromptTokens, int CompletionTokens, int PromptTokensDecoded, string? StopString) : GenerationEvent(Choice)
{
    /// <summary>Seconds from submission to admission (waiting for a slot and KV).</summary>
    public double QueueSeconds { get; init; }

    /// <summary>Seconds from admission to the request's first sampled token.</summary>
    public double PrefillSeconds { get; init; }

    /// <summary>Seconds from the first sampled token to this choice's end.</summary>
    public double DecodeSeconds { get; init; }

    /// <summary>Times the request was taken off the KV cache under pressure and recomputed.</summary>
    public int Preemptions { get; init; }
}

/// <summary>A choice failed; a <see cref="FinishedEvent"/> with <see cref="FinishReason.Error"/> follows.</summary>
/// <param name="Choice">Choice index.</param>
/// <param name="Message">Human-readable reason.</param>
/// <param name="Code">Stable code: <c>kv_cache_exhausted</c>, <c>invalid_grammar</c>, <c>internal_error</c>, <c>engine_stopped</c>.</param>
public sealed record ErrorEvent(int Choice, string Code, string Message) : GenerationEvent(Choice);

/// <summary>A submitted request: read <see cref="Events"/> until it completes (after every choice's FinishedEvent).</summary>
public sealed class GenerationHandle
{
    internal GenerationHandle(long id, ChannelReader<GenerationEvent> events, int promptTokens)
    {
        Id = id;
        Events = events;
        PromptTokens = promptTokens;
    }

    /// <summary>Engine-wide request id.</summary>
    public long Id { get; }

    /// <summary>Tokens, finishes and errors, in order per choice.</summary>
    public ChannelReader<GenerationEvent> Events { get; }

    public int PromptTokens { get; }

    /// <summary>Decode calls in which this request's sequences were batched together with another request's.</summary>
    internal int SharedDecodeCalls;
}

/// <summary>A request field is invalid (HTTP 400); <see cref="Field"/> names it as the OpenAI API does.</summary>
public sealed class InvalidRequestException : ArgumentException
{
    public InvalidRequestException() { }
    public InvalidRequestException(string message) : base(message) { }
    public InvalidRequestException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The offending field, e.g. <c>max_tokens</c>.</summary>
    public string? Field { get; init; }
}

/// <summary>The wait queue is full: retry later (HTTP 429/503).</summary>
public sealed class EngineOverloadedException : Exception
{
    public EngineOverloadedException() { }
    public EngineOverloadedException(string message) : base(message) { }
    public EngineOverloadedException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Prompt plus max tokens do not fit the context (HTTP 400).</summary>
public sealed class ContextLengthExceededException : Exception
{
    public ContextLengthExceededException() { }
    public ContextLengthExceededException(string message) : base(message) { }
    public ContextLengthExceededException(string message, Exception inner) : base(message, inner) { }

    public int PromptTokens { get; init; }
    public int ContextSize { get; init; }
}

/// <summary>A snapshot of the engine's counters.</summary>
public sealed record EngineStats
{
    public int Running { get; init; }
    public int Waiting { get; init; }

    /// <summary>KV cells in use (an estimate kept by the engine's ledger: shared prefix cells counted once).</summary>
    public int KvCellsUsed { get; init; }

    /// <summary>Cells of <see cref="KvCellsUsed"/> held only by idle cached prefixes, which a new request can take back.</summary>
    public int KvCellsReclaimable { get; init; }
    public int KvCellsTotal { get; init; }
    public int CachedPrefixes { get; init; }
    public long PrefixCacheQueries { get; init; }
    public long PrefixCacheHits { get; init; }
    public long PrefixCacheQueryTokens { get; init; }
    public long PrefixCacheHitTokens { get; init; }
    public long DecodeCalls { get; init; }
    public long TokensDecoded { get; init; }

    /// <summary>Most sequences that shared one llama_decode call.</summary>
    public int MaxSequencesPerDecode { get; init; }

    /// <summary>Most tokens submitted in one llama_decode call.</summary>
    public int MaxTokensPerDecode { get; init; }
    public long PromptTokensTotal { get; init; }
    public long GenerationTokensTotal { get; init; }
    public long RequestsFinished { get; init; }
    public long Preemptions { get; init; }

    /// <summary>Decodes stopped part-way because every request in them was cancelled (or the engine stopped).</summary>
    public long DecodesAborted { get; init; }
}

/// <summary>Facts about the loaded model and context.</summary>
public sealed record LlamaModelInfo
{
    public required string Name { get; init; }
    public required string Path { get; init; }
    public required KServe.Node.Gguf.ModelFacts Facts { get; init; }
    public required string Description { get; init; }
    public int ContextSize { get; init; }
    public int TrainingContextLength { get; init; }
    public int VocabSize { get; init; }
    public int EmbeddingSize { get; init; }
    public string? ChatTemplate { get; init; }
    public int BosTokenId { get; init; }
    public int EosTokenId { get; init; }
    public string BosToken { get; init; } = "";
    public string EosToken { get; init; } = "";
    public bool AddBos { get; init; }

    /// <summary>The fill-in-the-middle tokens (prefix, suffix, middle), or null when the vocabulary lacks one of them.</summary>
    public FimTokens? Fim { get; init; }
    public bool SupportsEmbeddings { get; init; }
    public int MaxParallelSequences { get; init; }
    public bool GpuOffload { get; init; }
}

/// <summary>A code model's fill-in-the-middle markers: the prompt is <c>Prefix prefix Suffix suffix Middle</c>.</summary>
public sealed record FimTokens(int Prefix, int Suffix, int Middle);

/// <summary>A ggml compute device (CPU, GPU) with its memory as the backend reports it.</summary>
public sealed record BackendDevice(string Name, string Description, string Kind, ulong FreeBytes, ulong TotalBytes);
