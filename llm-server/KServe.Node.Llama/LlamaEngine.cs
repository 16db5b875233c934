using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using KServe.Node.Gguf;
using KServe.Node.Llama.Engine;
using KServe.Node.Llama.Native;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Llama;

/// <summary>
/// The serving engine: one inference thread owns the llama.cpp context and every sequence. Each step it takes new
/// requests, drops cancelled ones, admits waiting ones (sequence slots, KV cells, prefix reuse), builds one batch
/// (a token for every generating sequence, then prompt chunks under the step budget), calls llama_decode once,
/// samples natively per sequence and publishes tokens. Other threads only enqueue work and read channels.
/// </summary>
public sealed unsafe partial class LlamaEngine : IAsyncDisposable
{
    private readonly EngineOptions _options;
    private readonly ILogger _logger;
    private readonly SafeLlamaModelHandle _model;
    private readonly SafeLlamaContextHandle _ctx;
    private readonly IntPtr _vocab;
    private readonly IntPtr _memory;
    private readonly int _nVocab;
    private readonly int _nCtx;
    private readonly int _budget;
    private readonly Thread _thread;
    private readonly Lock _inboxLock = new();
    private readonly List<RequestState> _inbox = [];
    private readonly Queue<Action> _jobs = new();

    /// <summary>Embeddings requests in arrival order (inference thread only).</summary>
    private readonly Queue<EmbeddingJob> _embeddingJobs = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly LinkedList<RequestState> _waiting = new();
    private readonly List<RequestState> _running = [];
    private readonly Stack<int> _freeSeqIds = new();
    private readonly PrefixCache _prefixCache;
    private readonly KvLedger _ledger = new();

    /// <summary>Whether a sequence's KV may be reused in part (a prefix); not for recurrent or hybrid models, whose state is not per position.</summary>
    private readonly bool _partialReuse;

    /// <summary>Set by a preemption, cleared when a request finishes: no admissions meanwhile.</summary>
    private bool _kvPressure;
    private readonly byte[] _pieceBuffer = new byte[256];
    private LlamaBatch _batch;
    private SafeLlamaContextHandle? _embedCtx;
    private SafeLlamaContextHandle? _scoreCtx;
    private LlamaBatch _scoreBatch;
    private readonly CpuThreadpool? _threadpool;
    private readonly CpuThreadpool? _threadpoolBatch;
    private long _nextRequestId;
    private long _admitCounter;
    private int _queued;
    private volatile EngineStats _stats;
    private long _embeddingDecodes;
    private int[]? _eogTokens;

    /// <summary>The candidate buffer <see cref="Sample"/> reuses (inference thread only).</summary>
    private LlamaTokenData[]? _candidates;
    private long _decodeCalls, _tokensDecoded, _promptTotal, _genTotal, _finished, _preemptions, _decodesAborted;
    private long _cacheQueries, _cacheHits, _cacheQueryTokens, _cacheHitTokens;
    private int _maxSeqPerDecode, _maxTokensPerDecode;

    /// <summary>This engine as the abort callback's data.</summary>
    private GCHandle _self;

    /// <summary>The requests of the decode in flight (null between decodes), read by <see cref="AbortDecode"/>.</summary>
    private volatile RequestState[]? _decoding;

    private LlamaEngine(EngineOptions options, ILogger logger, SafeLlamaModelHandle model, SafeLlamaContextHandle ctx, LlamaModelInfo info)
    {
        _options = options;
        _logger = logger;
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
        if (_threadpool != null)
        {
            NativeMethods.llama_attach_threadpool(ctx, _threadpool.Handle, _threadpoolBatch?.Handle ?? IntPtr.Zero);
        }

        _vocab = NativeMethods.llama_model_get_vocab(model);
        _memory = NativeMethods.llama_get_memory(ctx);
        _nVocab = NativeMethods.llama_vocab_n_tokens(_vocab);
        _nCtx = (int)NativeMethods.llama_n_ctx(ctx);
        _budget = options.StepTokenBudget > 0 ? options.StepTokenBudget : options.BatchSize;
        var nSeq = (int)NativeMethods.llama_n_seq_max(ctx);
        for (var i = nSeq - 1; i >= 0; i--)
        {
            _freeSeqIds.Push(i);
        }

        _prefixCache = new PrefixCache(Math.Max(0, nSeq - options.MaxParallelSequences));
        _partialReuse = !NativeMethods.llama_model_is_recurrent(model) && !NativeMethods.llama_model_is_hybrid(model);
        _batch = NativeMethods.llama_batch_init(options.BatchSize, 0, 1);
        _stats = new EngineStats { KvCellsTotal = _nCtx };
        _self = GCHandle.Alloc(this, GCHandleType.Weak);
        NativeMethods.llama_set_abort_callback(ctx, &AbortDecode, GCHandle.ToIntPtr(_self));
        _thread = new Thread(Run) { IsBackground = true, Name = "llama-inference" };
    }

    /// <summary>The loaded model and context.</summary>
    public LlamaModelInfo Model { get; }

    /// <summary>A snapshot of the counters, refreshed after every step.</summary>
    public EngineStats Stats => _stats;

    /// <summary>llama_decode calls made for embeddings so far (several inputs share one when they fit).</summary>
    public long EmbeddingDecodes => Interlocked.Read(ref _embeddingDecodes);

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
            Log.ModelLoaded(logger, info.Name, facts.ParameterCount, facts.Quantization, options.ModelPath, info.ContextSize, options.MaxParallelSequences, LlamaNative.LoadedDirectory ?? "?");
            var engine = new LlamaEngine(options, logger, model, ctx, info);
            engine._thread.Start();
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
        var bytes = Encoding.UTF8.GetBytes(text);
        var capacity = bytes.Length + 8;
        while (true)
        {
            var tokens = new int[capacity];
            int n;
            fixed (byte* b = bytes)
            fixed (int* t = tokens)
            {
                n = NativeMethods.llama_tokenize(_vocab, b, bytes.Length, t, capacity, addSpecial, parseSpecial);
            }

            if (n >= 0)
            {
                return tokens[..n];
            }

            capacity = -n;
        }
    }

    /// <summary>Turns tokens back into text; special tokens are rendered as text unless <paramref name="special"/> is false.</summary>
    public string Detokenize(ReadOnlySpan<int> tokens, bool special = true)
    {
        var capacity = tokens.Length * 8 + 16;
        while (true)
        {
            var buf = new byte[capacity];
            int n;
            fixed (int* t = tokens)
            fixed (byte* b = buf)
            {
                n = NativeMethods.llama_detokenize(_vocab, t, tokens.Length, b, capacity, false, special);
            }

            if (n >= 0)
            {
                return Encoding.UTF8.GetString(buf, 0, n);
            }

            capacity = -n;
        }
    }

    /// <summary>The text of one token (special tokens rendered when <paramref name="special"/>).</summary>
    public string TokenText(int token, bool special = true)
    {
        var buf = new byte[256];
        int n;
        fixed (byte* b = buf)
        {
            n = NativeMethods.llama_token_to_piece(_vocab, token, b, buf.Length, 0, special);
        }

        return n > 0 ? Encoding.UTF8.GetString(buf, 0, n) : "";
    }

    /// <summary>
    /// True when the wait queue is full: a caller can refuse a request (429) before it spends work on it. Generation
    /// and embeddings requests count alike.
    /// </summary>
    public bool QueueFull => Volatile.Read(ref _queued) >= _options.MaxQueuedRequests + _options.MaxParallelSequences;

    /// <summary>Counts <paramref name="requests"/> into the engine's queue, or throws when it is full.</summary>
    private void ReserveQueue(int requests)
    {
        if (Interlocked.Add(ref _queued, requests) > _options.MaxQueuedRequests + _options.MaxParallelSequences)
        {
            Interlocked.Add(ref _queued, -requests);
            throw new EngineOverloadedException($"the engine's wait queue is full ({_options.MaxQueuedRequests} waiting); retry later");
        }
    }

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
        ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
        var states = new List<RequestState>(requests.Count);
        try
        {
            foreach (var r in requests)
            {
                states.Add(Prepare(r));
            }
        }
        catch
        {
            foreach (var s in states)
            {
                DisposeSamplers(s);
            }

            throw;
        }

        try
        {
            ReserveQueue(states.Count);
        }
        catch (EngineOverloadedException)
        {
            foreach (var s in states)
            {
                DisposeSamplers(s);
            }

            throw;
        }

        lock (_inboxLock)
        {
            _inbox.AddRange(states);
        }

        foreach (var s in states)
        {
            s.Request.CancellationToken.UnsafeRegister(static o => ((LlamaEngine)o!).Wake(), this);
        }

        Wake();
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

        ReserveQueue(1);
        var job = new EmbeddingJob(inputs, ct);
        lock (_inboxLock)
        {
            _jobs.Enqueue(() => _embeddingJobs.Enqueue(job));
        }

        Wake();
        if (_stop.IsCancellationRequested && job.Done.TrySetException(new ObjectDisposedException(nameof(LlamaEngine))))
        {
            Interlocked.Decrement(ref _queued);
        }

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
        if (tokens.Length == 0 || tokens.Length > _nCtx)
        {
            throw new ArgumentException($"the prompt has {tokens.Length} tokens; scoring needs 1 to {_nCtx}", nameof(tokens));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(topK);
        return InvokeAsync(() => ScorePrompt(tokens, topK, ct));
    }

    /// <summary>Runs <paramref name="work"/> on the inference thread between steps.</summary>
    internal Task<T> InvokeAsync<T>(Func<T> work)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_inboxLock)
        {
            _jobs.Enqueue(() =>
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
        }

        Wake();
        if (_stop.IsCancellationRequested)
        {
            tcs.TrySetException(new ObjectDisposedException(nameof(LlamaEngine)));
        }

        return tcs.Task;
    }

    /// <summary>Highest KV position of a sequence (-1 = empty); runs on the inference thread.</summary>
    internal Task<int> SequencePosMaxAsync(int seqId) => InvokeAsync(() => NativeMethods.llama_memory_seq_pos_max(_memory, seqId));

    /// <summary>Each sequence the KV ledger knows with its length there and llama.cpp's highest position (-1 = empty), and the ledger's cell count.</summary>
    internal Task<(IReadOnlyList<(int Seq, int Ledger, int PosMax)> Sequences, int Used, int[] Unknown)> LedgerCheckAsync() => InvokeAsync(() =>
    {
        var known = _ledger.Sequences.Select(seq => (seq, _ledger.Length(seq), NativeMethods.llama_memory_seq_pos_max(_memory, seq))).ToList();
        var nSeq = (int)NativeMethods.llama_n_seq_max(_ctx);
        var unknown = Enumerable.Range(0, nSeq).Where(seq => !known.Any(k => k.seq == seq) && NativeMethods.llama_memory_seq_pos_max(_memory, seq) >= 0).ToArray();
        return ((IReadOnlyList<(int, int, int)>)known, _ledger.Used, unknown);
    });

    /// <summary>Sequence ids a request was given at admission (empty until admitted).</summary>
    internal Task<int[]> SequenceIdsAsync(GenerationHandle handle) =>
        InvokeAsync(() => _running.Concat(_waiting).FirstOrDefault(r => r.Handle == handle)?.SequenceIds ?? []);

    /// <summary>Stops the inference thread; running requests end with an engine_stopped error.</summary>
    public ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return ValueTask.CompletedTask;
        }

        _stop.Cancel();
        Wake();
        return new ValueTask(Task.Run(ReleaseAfterStop));
    }

    private void ReleaseAfterStop()
    {
        _thread.Join();
        _embedCtx?.Dispose();
        _scoreCtx?.Dispose();
        if (_scoreBatch.Token != null)
        {
            NativeMethods.llama_batch_free(_scoreBatch);
        }

        _ctx.Dispose();
        _self.Free();
        _threadpool?.Dispose();
        _threadpoolBatch?.Dispose();
        _model.Dispose();
        NativeMethods.llama_batch_free(_batch);
        _batch = default;
        _stop.Dispose();
        _wake.Dispose();
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (ObjectDisposedException)
        {
            // Disposed engine: nothing to wake.
        }
    }

    private static LlamaModelInfo Describe(EngineOptions options, SafeLlamaModelHandle model, SafeLlamaContextHandle ctx, ModelFacts facts)
    {
        var vocab = NativeMethods.llama_model_get_vocab(model);
        var desc = new byte[256];
        int n;
        fixed (byte* d = desc)
        {
            n = NativeMethods.llama_model_desc(model, d, (nuint)desc.Length);
        }

        string Piece(int token)
        {
            if (token < 0)
            {
                return "";
            }

            var buf = new byte[128];
            fixed (byte* b = buf)
            {
                var len = NativeMethods.llama_token_to_piece(vocab, token, b, buf.Length, 0, true);
                return len > 0 ? Encoding.UTF8.GetString(buf, 0, len) : "";
            }
        }

        var bos = NativeMethods.llama_vocab_bos(vocab);
        var eos = NativeMethods.llama_vocab_eos(vocab);
        var template = NativeMethods.llama_model_chat_template(model, null);
        int[] fim = [NativeMethods.llama_vocab_fim_pre(vocab), NativeMethods.llama_vocab_fim_suf(vocab), NativeMethods.llama_vocab_fim_mid(vocab)];
        return new LlamaModelInfo
        {
            Name = options.ModelName ?? facts.Name ?? Path.GetFileNameWithoutExtension(options.ModelPath),
            Path = Path.GetFullPath(options.ModelPath),
            Facts = facts,
            Description = n > 0 ? Encoding.UTF8.GetString(desc, 0, Math.Min(n, desc.Length)) : facts.Architecture,
            ContextSize = (int)NativeMethods.llama_n_ctx(ctx),
            TrainingContextLength = NativeMethods.llama_model_n_ctx_train(model),
            VocabSize = NativeMethods.llama_vocab_n_tokens(vocab),
            EmbeddingSize = NativeMethods.llama_model_n_embd(model),
            ChatTemplate = template == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(template),
            BosTokenId = bos,
            EosTokenId = eos,
            BosToken = Piece(bos),
            EosToken = Piece(eos),
            AddBos = NativeMethods.llama_vocab_get_add_bos(vocab),
            Fim = fim.All(t => t >= 0) ? new FimTokens(fim[0], fim[1], fim[2]) : null,
            SupportsEmbeddings = options.EnableEmbeddings && NativeMethods.llama_model_has_decoder(model),
            MaxParallelSequences = options.MaxParallelSequences,
            GpuOffload = options.GpuLayers != 0 && NativeMethods.llama_supports_gpu_offload(),
        };
    }
}
