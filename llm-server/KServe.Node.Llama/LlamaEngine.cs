using System.Threading.Channels;
using KServe.Node.Gguf;
using KServe.Node.Llama.Engine;
using KServe.Node.Llama.Native;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Llama;

/// <summary>
/// The serving engine, a facade: it loads the model, validates and prepares requests on the caller's thread (the
/// vocabulary checks, the sampler chains) and hands them to the <see cref="InferenceLoop"/>, the one thread that owns
/// the llama.cpp context and every sequence. Tokenizing is thread-safe and runs here.
/// </summary>
public sealed class LlamaEngine : IAsyncDisposable
{
    private readonly EngineOptions _options;
    private readonly SafeLlamaModelHandle _model;
    private readonly SafeLlamaContextHandle _ctx;
    private readonly LlamaVocab _vocab;
    private readonly Sampling _sampling;
    private readonly EmbeddingRunner _embeddings;
    private readonly PromptScorer _scorer;
    private readonly InferenceLoop _loop;
    private readonly CpuThreadpool? _threadpool;
    private readonly CpuThreadpool? _threadpoolBatch;
    private long _nextRequestId;
    private int _disposed;

    private LlamaEngine(EngineOptions options, ILogger logger, SafeLlamaModelHandle model, SafeLlamaContextHandle ctx, LlamaModelInfo info)
    {
        _options = options;
        _model = model;
        _ctx = ctx;
        Model = info;
        // A persistent pool (as llama-server has): without one ggml starts and joins its threads on every decode.
        var batchThreads = options.BatchThreads > 0 ? options.BatchThreads : options.Threads;
        if (batchThreads != options.Threads)
        {
            _threadpoolBatch = CpuThreadpool.TryCreate(batchThreads, options.Poll, paused: false);
        }

        _threadpool = CpuThreadpool.TryCreate(options.Threads, options.Poll, paused: _threadpoolBatch != null);
        ctx.Attach(_threadpool, _threadpoolBatch);
        _vocab = new LlamaVocab(model);
        _sampling = new Sampling(_vocab);
        var contexts = new NativeContexts(model, options, _threadpool, _threadpoolBatch);
        var kv = new KvSpace(ctx, Math.Max(0, ctx.MaxSequences - options.MaxParallelSequences), model.HasPerPositionState);
        _embeddings = new EmbeddingRunner(contexts, info.EmbeddingSize, info.Facts.PoolingType is { } p and > 0 ? p : (int)PoolingType.Mean, () => _loop!.LeaveQueue());
        _scorer = new PromptScorer(contexts, _sampling, ctx.ContextSize, _vocab.Count);
        _loop = new InferenceLoop(options, logger, ctx, _vocab, _sampling, kv, _embeddings, _scorer);
    }

    /// <summary>The loaded model and context.</summary>
    public LlamaModelInfo Model { get; }

    /// <summary>A snapshot of the counters, refreshed after every step.</summary>
    public EngineStats Stats => _loop.Stats;

    /// <summary>llama_decode calls made for embeddings so far (several inputs share one when they fit).</summary>
    public long EmbeddingDecodes => _embeddings.Decodes;

    /// <summary>Loads the native libraries, the model and a context, and starts the inference thread.</summary>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    /// <exception cref="LlamaLoadException">A library, backend, the model or the context could not be loaded; the message says which.</exception>
    public static LlamaEngine Start(EngineOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        options.Validate();
        var logger = loggerFactory.CreateLogger<LlamaEngine>();
        ModelFacts facts;
        try
        {
            facts = GgufFile.Read(options.ModelPath).Facts;
        }
        catch (GgufFormatException e)
        {
            throw new LlamaLoadException($"'{options.ModelPath}' is not a loadable GGUF model: {e.Message}", e);
        }

        LlamaNative.EnsureLoaded(options.NativeLibraryDirectory, options.Backend, logger);
        var mp = NativeMethods.llama_model_default_params();
        mp.NGpuLayers = options.GpuLayers;
        var model = SafeLlamaModelHandle.Load(options.ModelPath, mp);
        try
        {
            var nSeq = options.MaxParallelSequences + options.PrefixCacheSequences;
            var maxSeq = (int)NativeMethods.llama_max_parallel_sequences();
            if (nSeq > maxSeq)
            {
                throw new ArgumentException($"MaxParallelSequences + PrefixCacheSequences = {nSeq} exceeds llama.cpp's limit of {maxSeq}");
            }

            var cp = NativeMethods.llama_context_default_params();
            cp.NCtx = (uint)options.ContextSize;
            cp.NBatch = (uint)options.BatchSize;
            cp.NUbatch = (uint)options.MicroBatchSize;
            cp.NSeqMax = (uint)nSeq;
            cp.NThreads = options.Threads;
            cp.NThreadsBatch = options.BatchThreads > 0 ? options.BatchThreads : options.Threads;
            cp.FlashAttnType = (int)options.FlashAttention;
            cp.TypeK = (int)options.KvCacheType;
            cp.TypeV = (int)options.KvCacheType;
            cp.KvUnified = 1;
            cp.OffloadKqv = 1;
            cp.NoPerf = 1;
            cp.Embeddings = 0;
            var ctx = SafeLlamaContextHandle.Create(model, cp);
            var info = Describe(options, model, ctx, facts);
            Log.ModelLoaded(logger, info.Name, facts.ParameterCount, facts.Quantization, options.ModelPath, info.ContextSize, options.MaxParallelSequences, LlamaNative.LoadedDirectory ?? "?",
                LlamaNative.CpuUsesOpenMp() switch
                {
                    true => "OpenMP",
                    false => "ggml's spinning threadpool; scripts/build-llama-cpu.sh builds OpenMP libraries, faster where the cores are shared",
                    null => "no CPU backend",
                });
            var engine = new LlamaEngine(options, logger, model, ctx, info);
            engine._loop.Start();
            return engine;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The devices of the loaded backends, with free and total memory now (empty before any engine started).</summary>
    public static IReadOnlyList<BackendDevice> Devices() =>
        LlamaNative.LoadedDirectory is null
            ? []
            : LlamaNative.Devices().Select(d => new BackendDevice(d.Name, d.Description, d.Type.ToString(), d.FreeBytes, d.TotalBytes)).ToArray();

    /// <summary>Tokenizes text with the model's tokenizer (thread-safe).</summary>
    public int[] Tokenize(string text, bool addSpecial, bool parseSpecial)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _vocab.Tokenize(text, addSpecial, parseSpecial);
    }

    /// <summary>Turns tokens back into text; special tokens are rendered as text unless <paramref name="special"/> is false.</summary>
    public string Detokenize(ReadOnlySpan<int> tokens, bool special = true) => _vocab.Detokenize(tokens, special);

    /// <summary>The text of one token (special tokens rendered when <paramref name="special"/>).</summary>
    public string TokenText(int token, bool special = true) => _vocab.TokenText(token, special);

    /// <summary>
    /// True when the wait queue is full: a caller can refuse a request (429) before it spends work on it. Generation
    /// and embeddings requests count alike.
    /// </summary>
    public bool QueueFull => _loop.QueueFull;

    /// <summary>Queues a request. Events arrive on the handle until every choice has finished.</summary>
    /// <exception cref="ArgumentException">Invalid request (the message names the field), including an invalid grammar.</exception>
    /// <exception cref="ContextLengthExceededException">Prompt plus MaxTokens cannot fit the context.</exception>
    /// <exception cref="EngineOverloadedException">The wait queue is full.</exception>
    public GenerationHandle Submit(GenerationRequest request) => SubmitAll([request])[0];

    /// <summary>
    /// Queues several requests atomically (a completions batch): all or none are queued, and they become visible
    /// to the inference loop in the same step. Throws as <see cref="Submit"/> does.
    /// </summary>
    public IReadOnlyList<GenerationHandle> SubmitAll(IReadOnlyList<GenerationRequest> requests)
    {
        ObjectDisposedException.ThrowIf(_loop.Stopping, this);
        var states = new List<RequestState>(requests.Count);
        try
        {
            foreach (var r in requests)
            {
                states.Add(Prepare(r));
            }

            _loop.ReserveQueue(states.Count);
        }
        catch
        {
            foreach (var s in states)
            {
                foreach (var c in s.Choices)
                {
                    c.Sampler.Dispose();
                }
            }

            throw;
        }

        _loop.Enqueue(states);
        return states.Select(s => s.Handle).ToArray();
    }

    /// <summary>
    /// Pooled, L2-normalised embeddings of each input (one vector per input). The inputs are decoded together, as
    /// many to a decode as the step's token budget holds, one decode a step beside generation.
    /// </summary>
    /// <exception cref="NotSupportedException">Embeddings are disabled.</exception>
    /// <exception cref="ArgumentException">An input is empty or longer than the embedding context.</exception>
    public Task<float[][]> EmbedAsync(IReadOnlyList<int[]> inputs, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (!Model.SupportsEmbeddings)
        {
            throw new NotSupportedException("embeddings are disabled for this engine");
        }

        for (var i = 0; i < inputs.Count; i++)
        {
            if (inputs[i] is null || inputs[i].Length == 0)
            {
                throw new ArgumentException($"input[{i}] is empty", nameof(inputs));
            }

            if (inputs[i].Length > _options.EmbeddingContextSize)
            {
                throw new ArgumentException($"input[{i}] has {inputs[i].Length} tokens; the embedding context holds {_options.EmbeddingContextSize}", nameof(inputs));
            }
        }

        if (inputs.Count == 0)
        {
            return Task.FromResult(Array.Empty<float[]>());
        }

        _loop.ReserveQueue(1);
        var job = new EmbeddingJob(inputs, ct);
        _loop.Enqueue(job);
        return job.Done.Task;
    }

    /// <summary>
    /// The log-probability of every prompt token after the first given the tokens before it, with the
    /// <paramref name="topK"/> most likely tokens at each position (what lm-evaluation-harness reads from
    /// <c>echo</c> with <c>logprobs</c>). Element i describes token i+1.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is empty or longer than the context.</exception>
    public Task<PromptTokenLogprob[]> ScorePromptAsync(int[] tokens, int topK, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Length == 0 || tokens.Length > Model.ContextSize)
        {
            throw new ArgumentException($"the prompt has {tokens.Length} tokens; scoring needs 1 to {Model.ContextSize}", nameof(tokens));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(topK);
        return InvokeAsync(() => _loop.ScorePrompt(tokens, topK, ct));
    }

    /// <summary>Runs <paramref name="work"/> on the inference thread between steps.</summary>
    internal Task<T> InvokeAsync<T>(Func<T> work)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var posted = _loop.Post(() =>
        {
            try
            {
                tcs.SetResult(work());
            }
            catch (Exception e)
            {
                tcs.SetException(e);
            }
        });
        if (!posted)
        {
            tcs.TrySetException(new ObjectDisposedException(nameof(LlamaEngine)));
        }

        return tcs.Task;
    }

    /// <summary>Highest KV position of a sequence (-1 = empty); runs on the inference thread.</summary>
    internal Task<int> SequencePosMaxAsync(int seqId) => InvokeAsync(() => _loop.PosMax(seqId));

    /// <summary>Each sequence the KV ledger knows with its length there and llama.cpp's highest position (-1 = empty), the ledger's cell count, and sequences llama.cpp holds that the ledger does not know.</summary>
    internal Task<(IReadOnlyList<(int Seq, int Ledger, int PosMax)> Sequences, int Used, int[] Unknown)> LedgerCheckAsync() => InvokeAsync(_loop.CheckLedger);

    /// <summary>Sequence ids a request was given at admission (empty until admitted).</summary>
    internal Task<int[]> SequenceIdsAsync(GenerationHandle handle) => InvokeAsync(() => _loop.SequenceIds(handle));

    /// <summary>Stops the inference thread; running requests end with an engine_stopped error.</summary>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return ValueTask.CompletedTask;
        }

        return new ValueTask(Task.Run(() =>
        {
            _loop.Dispose();
            _embeddings.Dispose();
            _scorer.Dispose();
            _ctx.Dispose();
            _threadpool?.Dispose();
            _threadpoolBatch?.Dispose();
            _model.Dispose();
        }));
    }

    private RequestState Prepare(GenerationRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(r.Sampling, "sampling");
        if (r.PromptTokens is null || r.PromptTokens.Length == 0)
        {
            throw new InvalidRequestException("the prompt is empty") { Field = "prompt" };
        }

        foreach (var t in r.PromptTokens)
        {
            if (!_vocab.Contains(t))
            {
                throw new InvalidRequestException($"prompt token {t} is outside the vocabulary (0..{_vocab.Count - 1})") { Field = "prompt" };
            }
        }

        if (r.MaxTokens < 1)
        {
            throw new InvalidRequestException("max_tokens must be >= 1") { Field = "max_tokens" };
        }

        if (r.N < 1 || r.N > _options.MaxParallelSequences)
        {
            throw new InvalidRequestException($"n must be 1..{_options.MaxParallelSequences}") { Field = "n" };
        }

        if (r.TopLogprobs is < -1 or > Sampling.MaxTopLogprobs)
        {
            throw new InvalidRequestException($"top_logprobs must be 0..{Sampling.MaxTopLogprobs}") { Field = "top_logprobs" };
        }

        r.Sampling.Validate();
        if (r.Sampling.LogitBias is { } bias && bias.Keys.Any(k => !_vocab.Contains(k)))
        {
            throw new InvalidRequestException($"logit_bias names a token outside the vocabulary (0..{_vocab.Count - 1})") { Field = "logit_bias" };
        }

        var nCtx = Model.ContextSize;
        var need = (long)r.PromptTokens.Length + (long)r.N * r.MaxTokens;
        if (need > nCtx)
        {
            throw new ContextLengthExceededException(
                $"the prompt has {r.PromptTokens.Length} tokens and {r.N} x max_tokens {r.MaxTokens} more are requested, but the context holds {nCtx} tokens")
            { PromptTokens = r.PromptTokens.Length, ContextSize = nCtx };
        }

        var id = Interlocked.Increment(ref _nextRequestId);
        var channel = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });
        var state = new RequestState(id, r, channel, new GenerationHandle(id, channel.Reader, r.PromptTokens.Length));
        var choices = new ChoiceState[r.N];
        try
        {
            for (var i = 0; i < r.N; i++)
            {
                choices[i] = new ChoiceState(state, i, _sampling.BuildChain(r, i));
            }
        }
        catch
        {
            foreach (var c in choices)
            {
                c?.Sampler.Dispose();
            }

            throw;
        }

        state.Choices = choices;
        return state;
    }

    private static LlamaModelInfo Describe(EngineOptions options, SafeLlamaModelHandle model, SafeLlamaContextHandle ctx, ModelFacts facts)
    {
        var vocab = new LlamaVocab(model);
        return new LlamaModelInfo
        {
            Name = options.ModelName ?? facts.Name ?? Path.GetFileNameWithoutExtension(options.ModelPath),
            Path = Path.GetFullPath(options.ModelPath),
            Facts = facts,
            Description = model.Description ?? facts.Architecture,
            ContextSize = ctx.ContextSize,
            TrainingContextLength = model.TrainingContextLength,
            VocabSize = vocab.Count,
            EmbeddingSize = model.EmbeddingSize,
            ChatTemplate = model.ChatTemplate,
            BosTokenId = vocab.Bos,
            EosTokenId = vocab.Eos,
            BosToken = vocab.TokenText(vocab.Bos, special: true),
            EosToken = vocab.TokenText(vocab.Eos, special: true),
            AddBos = vocab.AddBos,
            Fim = vocab.Fim,
            SupportsEmbeddings = options.EnableEmbeddings && model.HasDecoder,
            MaxParallelSequences = options.MaxParallelSequences,
            GpuOffload = options.GpuLayers != 0 && NativeMethods.llama_supports_gpu_offload(),
        };
    }
}
