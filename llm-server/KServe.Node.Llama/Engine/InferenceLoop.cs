using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KServe.Node.Llama.Native;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Llama.Engine;

/// <summary>
/// The inference thread: it owns the serving context and every sequence. Each step it takes new requests, drops
/// cancelled ones, admits waiting ones (the <see cref="Scheduler"/> decides, <see cref="KvSpace"/> holds the cells),
/// runs one embeddings decode when one is queued, builds one batch (a token for every generating sequence, then
/// prompt chunks under the step budget), calls llama_decode once, samples per sequence and publishes tokens.
/// Other threads only enqueue work (the Enqueue methods, <see cref="Post"/>) and read channels and
/// <see cref="Stats"/>.
/// </summary>
internal sealed unsafe class InferenceLoop : IDisposable
{
    private readonly EngineOptions _options;
    private readonly ILogger _logger;
    private readonly SafeLlamaContextHandle _ctx;
    private readonly LlamaVocab _vocab;
    private readonly Sampling _sampling;
    private readonly KvSpace _kv;
    private readonly EmbeddingRunner _embeddings;
    private readonly PromptScorer _scorer;
    private readonly BatchBuilder _batch;
    private readonly int _nCtx;
    private readonly int _budget;
    private readonly Thread _thread;
    private readonly Lock _inboxLock = new();
    private readonly List<RequestState> _inbox = [];
    private readonly Queue<Action> _jobs = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly LinkedList<RequestState> _waiting = new();
    private readonly List<RequestState> _running = [];
    private readonly byte[] _pieceBuffer = new byte[256];

    /// <summary>Set by a preemption, cleared when a request finishes: no admissions meanwhile.</summary>
    private bool _kvPressure;
    private long _admitCounter;
    private int _queued;
    private volatile EngineStats _stats;
    private long _decodeCalls, _tokensDecoded, _promptTotal, _genTotal, _finished, _preemptions, _decodesAborted;
    private long _cacheQueries, _cacheHits, _cacheQueryTokens, _cacheHitTokens;
    private int _maxSeqPerDecode, _maxTokensPerDecode;

    /// <summary>This loop as the abort callback's data.</summary>
    private GCHandle _self;

    /// <summary>The requests of the decode in flight (null between decodes), read by <see cref="AbortDecode"/>.</summary>
    /// <summary>The requests of the decode under way (for the abort callback), null between decodes.</summary>
    private volatile List<RequestState>? _decoding;

    // Reused by every step (the inference thread only).
    private readonly List<ChoiceState> _active = [];
    private readonly List<SchedSequence> _sequences = [];
    private readonly List<RequestState> _stepRequests = [];

    public InferenceLoop(EngineOptions options, ILogger logger, SafeLlamaContextHandle ctx, LlamaVocab vocab, Sampling sampling, KvSpace kv, EmbeddingRunner embeddings, PromptScorer scorer)
    {
        _options = options;
        _logger = logger;
        _ctx = ctx;
        _vocab = vocab;
        _sampling = sampling;
        _kv = kv;
        _embeddings = embeddings;
        _scorer = scorer;
        _nCtx = ctx.ContextSize;
        _budget = options.StepTokenBudget > 0 ? options.StepTokenBudget : options.BatchSize;
        _batch = new BatchBuilder(options.BatchSize);
        _stats = new EngineStats { KvCellsTotal = _nCtx };
        _self = GCHandle.Alloc(this, GCHandleType.Weak);
        ctx.SetAbortCallback(&AbortDecode, GCHandle.ToIntPtr(_self));
        _thread = new Thread(Run) { IsBackground = true, Name = "llama-inference" };
    }

    /// <summary>A snapshot of the counters, refreshed after every step.</summary>
    public EngineStats Stats => _stats;

    public bool Stopping => _stop.IsCancellationRequested;

    /// <summary>True when the wait queue is full (generation and embeddings requests count alike).</summary>
    public bool QueueFull => Volatile.Read(ref _queued) >= QueueLimit;

    private int QueueLimit => _options.MaxQueuedRequests + _options.MaxParallelSequences;

    public void Start() => _thread.Start();

    /// <summary>Counts <paramref name="requests"/> into the queue, or throws when it is full.</summary>
    public void ReserveQueue(int requests)
    {
        if (Interlocked.Add(ref _queued, requests) > QueueLimit)
        {
            Interlocked.Add(ref _queued, -requests);
            throw new EngineOverloadedException($"the engine's wait queue is full ({_options.MaxQueuedRequests} waiting); retry later");
        }
    }

    /// <summary>A queued request (counted by <see cref="ReserveQueue"/>) ended.</summary>
    public void LeaveQueue() => Interlocked.Decrement(ref _queued);

    /// <summary>Hands prepared requests (counted by <see cref="ReserveQueue"/>) to the loop; they become visible in the same step.</summary>
    public void Enqueue(IReadOnlyList<RequestState> requests)
    {
        // Registered before the loop can see the request, so the loop that ends it also disposes the registration.
        foreach (var s in requests)
        {
            s.Registration = s.Request.CancellationToken.UnsafeRegister(static o => ((InferenceLoop)o!).Wake(), this);
        }

        lock (_inboxLock)
        {
            _inbox.AddRange(requests);
        }

        Wake();
    }

    /// <summary>Runs <paramref name="job"/> on the inference thread before the next step; false when the loop already stopped.</summary>
    public bool Post(Action job)
    {
        lock (_inboxLock)
        {
            _jobs.Enqueue(job);
        }

        Wake();
        return !_stop.IsCancellationRequested;
    }

    /// <summary>Queues an embeddings request (counted by <see cref="ReserveQueue"/>).</summary>
    public void Enqueue(EmbeddingJob job)
    {
        if (!Post(() => _embeddings.Enqueue(job)) && job.Done.TrySetException(new ObjectDisposedException(nameof(LlamaEngine))))
        {
            LeaveQueue();
        }
    }

    /// <summary>Scores a prompt between steps.</summary>
    public PromptTokenLogprob[] ScorePrompt(int[] tokens, int topK, CancellationToken ct) => _scorer.Score(tokens, topK, ct);

    /// <summary>The KV ledger against llama.cpp's positions (inference thread).</summary>
    public (IReadOnlyList<(int Seq, int Ledger, int PosMax)> Sequences, int Used, int[] Unknown) CheckLedger()
    {
        var (known, unknown) = _kv.Check();
        return (known, _kv.Used, unknown);
    }

    /// <summary>Highest KV position of a sequence (inference thread).</summary>
    public int PosMax(int seq) => _kv.PosMax(new SeqId(seq));

    /// <summary>The sequence ids of a request's choices (inference thread).</summary>
    public int[] SequenceIds(GenerationHandle handle) => _running.Concat(_waiting).FirstOrDefault(r => r.Handle == handle)?.SequenceIds ?? [];

    /// <summary>Stops the thread: running and waiting requests end with engine_stopped. Returns once it has.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        Wake();
        _thread.Join();
        _batch.Dispose();
        _self.Free();
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
            // Stopped: nothing to wake.
        }
    }

    private void Run()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                if (!Step())
                {
                    _wake.Wait(_stop.Token);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                Log.StepFailed(_logger, e);
                foreach (var r in _running.ToArray())
                {
                    FailRequest(r, "internal_error", "the inference step failed: " + e.Message);
                }
            }

            PublishStats();
        }

        Shutdown();
    }

    private bool Step()
    {
        var didWork = DrainInbox();
        SweepCancelled();
        Admit();
        // At most one embedding decode a step, inside the step's token budget: streams keep flowing beside it.
        var embedded = _embeddings.Step(_budget);
        didWork |= embedded > 0 || _embeddings.HasWork;

        var active = _active;
        active.Clear();
        foreach (var r in _running)
        {
            foreach (var c in r.Choices)
            {
                if (!c.Done && !c.WaitsForSibling)
                {
                    active.Add(c);
                }
            }
        }

        if (active.Count == 0)
        {
            return didWork;
        }

        _sequences.Clear();
        for (var i = 0; i < active.Count; i++)
        {
            var c = active[i];
            _sequences.Add(new SchedSequence(i, c.PromptRemaining, c.PendingToken >= 0 && c.PromptRemaining == 0, c.Owner.AdmitOrder));
        }

        var plan = Scheduler.PlanStep(_sequences, Math.Max(_budget - embedded, _options.MaxParallelSequences));
        if (plan.Count == 0)
        {
            return didWork;
        }

        var planned = 0;
        foreach (var slice in plan)
        {
            planned += slice.Tokens;
        }

        if (!MakeRoom(planned))
        {
            // A request was preempted: the next step plans without it.
            return true;
        }

        var requests = BuildBatch(plan, active);
        _decoding = requests;
        var rc = _ctx.Decode(_batch);
        _decoding = null;
        _decodeCalls++;
        if (rc != DecodeResult.Ok)
        {
            foreach (var slice in plan)
            {
                var c = active[slice.Key];
                c.BatchOutput = -1;
                // Whatever a failed decode left beyond the committed tokens is not ours to keep.
                _kv.Truncate(c.Seq!.Value, c.Tokens.Count);
            }

            HandleDecodeFailure(rc, _batch.Count, requests);
            return true;
        }

        _tokensDecoded += _batch.Count;
        _maxTokensPerDecode = Math.Max(_maxTokensPerDecode, _batch.Count);
        _maxSeqPerDecode = Math.Max(_maxSeqPerDecode, plan.Count);
        if (requests.Count > 1)
        {
            foreach (var r in requests)
            {
                Interlocked.Increment(ref r.Handle.SharedDecodeCalls);
            }
        }

        Commit(plan, active);
        foreach (var slice in plan)
        {
            var c = active[slice.Key];
            if (c.BatchOutput >= 0 && !c.Done)
            {
                var idx = c.BatchOutput;
                c.BatchOutput = -1;
                SampleAndPublish(c, idx);
            }
        }

        return true;
    }

    /// <summary>Writes the step's tokens into the batch, marking the outputs to sample; returns the requests in it (a list the next step reuses).</summary>
    private List<RequestState> BuildBatch(List<SchedSlice> plan, List<ChoiceState> active)
    {
        _batch.Clear();
        var requests = _stepRequests;
        requests.Clear();
        foreach (var slice in plan)
        {
            var c = active[slice.Key];
            var seq = c.Seq!.Value;
            if (!requests.Contains(c.Owner))
            {
                requests.Add(c.Owner);
            }
            if (!slice.IsPrompt)
            {
                c.BatchOutput = _batch.Add(c.PendingToken, c.Tokens.Count, seq, output: true);
                continue;
            }

            var source = c.Source;
            for (var j = 0; j < slice.Tokens; j++)
            {
                var idx = c.PromptPos + j;
                // The prompt's last token gives the first sample; a recomputed choice already holds its next token.
                var last = idx == source.Length - 1 && c.PendingToken < 0;
                var at = _batch.Add(source[idx], c.Tokens.Count + j, seq, last);
                if (last)
                {
                    c.BatchOutput = at;
                }
            }
        }

        return requests;
    }

    /// <summary>After a decode: each choice's KV now holds what the step added.</summary>
    private void Commit(List<SchedSlice> plan, List<ChoiceState> active)
    {
        foreach (var slice in plan)
        {
            var c = active[slice.Key];
            if (!slice.IsPrompt)
            {
                c.Tokens.Add(c.PendingToken);
                c.PendingToken = -1;
            }
            else
            {
                c.Tokens.AddRange(c.Source.AsSpan(c.PromptPos, slice.Tokens));
                c.PromptPos += slice.Tokens;
                if (c.Replay is null)
                {
                    c.PromptDecoded += slice.Tokens;
                }
            }

            _kv.Grew(c.Seq!.Value, c.Tokens.Count);
        }
    }

    /// <summary>
    /// ggml's abort callback, called between graph nodes of a decode: a long prompt decode stops as soon as every
    /// request in it is cancelled or the engine stops, instead of running to its end.
    /// </summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte AbortDecode(IntPtr data)
    {
        if (GCHandle.FromIntPtr(data).Target is not InferenceLoop loop || loop._decoding is not { } requests)
        {
            return 0;
        }

        if (loop._stop.IsCancellationRequested)
        {
            return 1;
        }

        foreach (var r in requests)
        {
            if (!r.Cancelled)
            {
                return 0;
            }
        }

        return 1;
    }

    private void HandleDecodeFailure(DecodeResult rc, int tokens, List<RequestState> requests)
    {
        switch (rc)
        {
            case DecodeResult.Aborted:
                // Every request of the decode was cancelled (or the engine stops): the next step's sweep frees them.
                Log.DecodeAborted(_logger, tokens);
                _decodesAborted++;
                return;
            case DecodeResult.NoKvSlot:
                Log.NoKvSlot(_logger, tokens, _kv.Used);
                switch (Scheduler.AfterNoSlot(_kv.CachedPrefixes > 0, _running.Count))
                {
                    case KvAction.EvictPrefix:
                        _kv.EvictOne();
                        return;
                    case KvAction.Preempt:
                        Preempt(Youngest());
                        return;
                    default:
                        foreach (var r in requests)
                        {
                            FailRequest(r, "kv_cache_exhausted", "the KV cache cannot hold this request even alone; lower max_tokens or n");
                        }

                        return;
                }

            default:
                foreach (var r in requests)
                {
                    FailRequest(r, "internal_error", $"llama_decode failed with {rc}");
                }

                return;
        }
    }

    /// <summary>
    /// Makes room in the KV cache for the <paramref name="tokens"/> the next step adds, as <see cref="Scheduler.BeforeStep"/>
    /// decides. False when a request was preempted (the step must be planned again).
    /// </summary>
    private bool MakeRoom(int tokens)
    {
        while (true)
        {
            switch (Scheduler.BeforeStep(_kv.Used, tokens, _nCtx, _kv.CachedPrefixes > 0, _running.Count))
            {
                case KvAction.EvictPrefix:
                    _kv.EvictOne();
                    continue;
                case KvAction.Preempt:
                    Preempt(Youngest());
                    return false;
                default:
                    return true;
            }
        }
    }

    /// <summary>
    /// Takes a running request off the KV cache and puts it back at the head of the queue. Its choices keep what they
    /// sampled and streamed (sampler, text, pending token); their cells become cached prefixes (evicted like any
    /// other when the room is needed), so re-admission recomputes only what was evicted. The client's stream pauses.
    /// </summary>
    private void Preempt(RequestState r)
    {
        _preemptions++;
        r.Preemptions++;
        var started = r.Choices.Any(c => c.PendingToken >= 0 || c.Completion > 0);
        Log.Preempted(_logger, r.Id, r.Choices.Sum(c => c.Done ? 0 : c.Tokens.Count), _kv.Used, _nCtx);
        foreach (var c in r.Choices)
        {
            if (c.Done)
            {
                continue;
            }

            if (c.Seq is { } seq)
            {
                _kv.Release(seq, c.Tokens, keep: true);
            }

            c.Seq = null;
            c.Replay = started ? [.. c.Tokens] : null;
            c.Tokens.Clear();
            c.PromptPos = 0;
            c.BatchOutput = -1;
            c.WaitsForSibling = !started && c.Index > 0;
        }

        r.Resumed = started;
        _running.Remove(r);
        _waiting.AddFirst(r);
        // Until a request finishes, admitting would only take the room back from the ones still running.
        _kvPressure = true;
    }

    /// <summary>The preemption victim: the most recently admitted running request.</summary>
    private RequestState Youngest()
    {
        var victim = Scheduler.PickVictim(_running.Select(r => (r.Id, r.AdmitOrder)));
        return _running.First(r => r.Id == victim);
    }

    private void SampleAndPublish(ChoiceState c, int idx)
    {
        var logits = _ctx.Logits(idx, _vocab.Count);
        if (c.Completion < c.Owner.Request.MinTokens)
        {
            _sampling.BanEndings(logits, c.Owner.Request.StopTokenIds);
        }

        var token = _sampling.Sample(c.Sampler, logits);
        if (c.Index == 0)
        {
            foreach (var sib in c.Owner.Choices)
            {
                if (!sib.WaitsForSibling || sib.Done)
                {
                    continue;
                }

                // n > 1: the siblings share the prompt's KV cells instead of decoding the prompt again.
                _kv.Share(c.Seq!.Value, sib.Seq!.Value, c.Tokens.Count);
                sib.Tokens.AddRange(c.Tokens);
                sib.PromptPos = c.PromptPos;
                sib.WaitsForSibling = false;
                Accept(sib, _sampling.Sample(sib.Sampler, logits), logits);
            }
        }

        Accept(c, token, logits);
    }

    private void Accept(ChoiceState c, int token, ReadOnlySpan<float> logits)
    {
        if (token < 0)
        {
            FinishChoice(c, FinishReason.Error, null, "no_valid_token", Sampling.NoValidToken);
            return;
        }

        var req = c.Owner.Request;
        if (c.Owner.FirstTokenAt == 0)
        {
            c.Owner.FirstTokenAt = Stopwatch.GetTimestamp();
        }

        if ((!req.IgnoreEos && _vocab.IsEndOfGeneration(token)) || (req.StopTokenIds is { Count: > 0 } stopIds && stopIds.Contains(token)))
        {
            var rest = c.Text.Flush();
            if (rest.Length > 0)
            {
                c.Owner.Channel.Writer.TryWrite(new TokenEvent(c.Index, -1, rest, null, null));
            }

            FinishChoice(c, FinishReason.Stop, null);
            return;
        }

        float? logprob = null;
        IReadOnlyList<TokenLogprob>? top = null;
        if (req.TopLogprobs >= 0)
        {
            (logprob, top) = _sampling.Logprobs(logits, token, req.TopLogprobs);
        }

        var len = _vocab.Piece(token, _pieceBuffer, req.RenderSpecialTokens);
        var (release, stop) = c.Text.Push(_pieceBuffer.AsSpan(0, len));
        c.Completion++;
        _genTotal++;
        if (stop != null)
        {
            c.Owner.Channel.Writer.TryWrite(new TokenEvent(c.Index, token, release, logprob, top));
            FinishChoice(c, FinishReason.Stop, stop);
            return;
        }

        if (c.Completion >= req.MaxTokens || c.Tokens.Count + 1 >= _nCtx)
        {
            c.Owner.Channel.Writer.TryWrite(new TokenEvent(c.Index, token, release + c.Text.Flush(), logprob, top));
            FinishChoice(c, FinishReason.Length, null);
            return;
        }

        c.Owner.Channel.Writer.TryWrite(new TokenEvent(c.Index, token, release, logprob, top));
        c.PendingToken = token;
    }

    private void FinishChoice(ChoiceState c, FinishReason reason, string? stop, string? errorCode = null, string? errorMessage = null)
    {
        if (c.Done)
        {
            return;
        }

        c.Done = true;
        var r = c.Owner;
        if (errorCode != null)
        {
            r.Channel.Writer.TryWrite(new ErrorEvent(c.Index, errorCode, errorMessage ?? errorCode));
        }

        var now = Stopwatch.GetTimestamp();
        var admitted = r.AdmittedAt != 0 ? r.AdmittedAt : now;
        var firstToken = r.FirstTokenAt != 0 ? r.FirstTokenAt : now;
        c.Sampler.Dispose();
        if (c.Seq is { } seq)
        {
            // A finished sequence stays as a cached prefix until its cells are needed; a failed one is freed.
            _kv.Release(seq, c.Tokens, keep: reason is FinishReason.Stop or FinishReason.Length);
            c.Seq = null;
        }

        var last = ++r.Finished == r.Choices.Length;
        if (last)
        {
            _running.Remove(r);
            _waiting.Remove(r);
            _kvPressure = false;
            LeaveQueue();
            _finished++;
        }

        // A caller that sees its request finish also sees it gone from the counters, and the work it took; the loop
        // may go idle right after this (a step that only swept cancelled requests), so nothing later publishes them.
        PublishStats();
        r.Channel.Writer.TryWrite(new FinishedEvent(c.Index, reason, r.Request.PromptTokens.Length, r.CachedTokens, c.Completion, c.PromptDecoded, stop)
        {
            QueueSeconds = Stopwatch.GetElapsedTime(r.SubmittedAt, admitted).TotalSeconds,
            PrefillSeconds = Stopwatch.GetElapsedTime(admitted, firstToken).TotalSeconds,
            DecodeSeconds = Stopwatch.GetElapsedTime(firstToken, now).TotalSeconds,
            Preemptions = r.Preemptions,
        });
        if (last)
        {
            r.Channel.Writer.TryComplete();
            r.Registration.Dispose();
            Log.RequestFinished(_logger, r.Id, reason.ToString(), r.Request.PromptTokens.Length, r.CachedTokens, c.Completion);
        }
    }

    private void FailRequest(RequestState r, string code, string message)
    {
        foreach (var c in r.Choices)
        {
            FinishChoice(c, FinishReason.Error, null, code, message);
        }
    }

    private bool DrainInbox()
    {
        List<RequestState>? incoming = null;
        List<Action>? jobs = null;
        lock (_inboxLock)
        {
            if (_inbox.Count > 0)
            {
                incoming = [.. _inbox];
                _inbox.Clear();
            }

            if (_jobs.Count > 0)
            {
                jobs = [.. _jobs];
                _jobs.Clear();
            }
        }

        if (incoming != null)
        {
            foreach (var r in incoming)
            {
                _waiting.AddLast(r);
            }
        }

        if (jobs != null)
        {
            foreach (var job in jobs)
            {
                job();
            }
        }

        return incoming != null || jobs != null;
    }

    /// <summary>Ends cancelled requests, and waiting ones never admitted that are past the queue timeout.</summary>
    private void SweepCancelled()
    {
        var timeout = _options.QueueTimeoutSeconds;
        var now = Stopwatch.GetTimestamp();
        for (var node = _waiting.First; node != null;)
        {
            var next = node.Next;
            var r = node.Value;
            if (r.Cancelled)
            {
                _waiting.Remove(node);
                foreach (var c in r.Choices)
                {
                    FinishChoice(c, FinishReason.Cancelled, null);
                }
            }
            else if (Scheduler.QueueTimedOut(r.AdmitOrder != 0, Stopwatch.GetElapsedTime(r.SubmittedAt, now).TotalSeconds, timeout))
            {
                _waiting.Remove(node);
                FailRequest(r, "queue_timeout", $"the request waited more than {timeout} s for a free sequence and KV cache; retry later");
            }

            node = next;
        }

        foreach (var r in _running.ToArray())
        {
            if (r.Cancelled)
            {
                foreach (var c in r.Choices)
                {
                    FinishChoice(c, FinishReason.Cancelled, null);
                }
            }
        }
    }

    private int RunningSequences => _running.Sum(r => r.Choices.Count(c => !c.Done));

    /// <summary>The longest prefix of <paramref name="tokens"/> (at most <paramref name="max"/>) held by a cached prefix or a running sequence.</summary>
    private (CachedPrefix? Entry, int Length, SeqId? Source) FindReuse(ReadOnlySpan<int> tokens, int max)
    {
        if (!_kv.PartialReuse)
        {
            return (null, 0, null);
        }

        var (entry, reuse) = _kv.FindCached(tokens, max);
        var source = entry?.Seq;
        foreach (var running in _running)
        {
            foreach (var c in running.Choices)
            {
                if (!c.Done && !c.WaitsForSibling && c.Seq is { } seq)
                {
                    var l = Math.Min(Scheduler.CommonPrefix(tokens, CollectionsMarshal.AsSpan(c.Tokens)), max);
                    if (l > reuse)
                    {
                        (entry, reuse, source) = (null, l, seq);
                    }
                }
            }
        }

        return (entry, reuse, source);
    }

    private void Admit()
    {
        while (!_kvPressure && _waiting.First is { } node)
        {
            var r = node.Value;
            var choices = r.Choices.Where(c => !c.Done).ToArray();
            // A new request decodes its prompt once (choice 0) and its siblings copy it; a resumed one recomputes each
            // choice's own tokens.
            var leaders = r.Resumed ? choices : [choices[0]];
            var reuse = new (CachedPrefix? Entry, int Length, SeqId? Source)[leaders.Length];
            var uncached = 0;
            for (var i = 0; i < leaders.Length; i++)
            {
                var c = leaders[i];
                reuse[i] = FindReuse(c.Source, c.PendingToken >= 0 ? c.Source.Length : c.Source.Length - 1);
                uncached += c.Source.Length - reuse[i].Length;
            }

            var keep = reuse.Where(u => u.Entry != null).Select(u => u.Entry!).ToHashSet();
            if (!Scheduler.CanAdmit(RunningSequences, _options.MaxParallelSequences, choices.Length, _kv.FreeCells, _kv.EvictableExcept(keep), uncached))
            {
                // FIFO: a request that does not fit blocks those behind it, so big requests are not starved.
                return;
            }

            while (_kv.FreeCells < uncached + choices.Length && _kv.EvictOne(keep))
            {
            }

            _waiting.RemoveFirst();
            _running.Add(r);
            if (r.AdmitOrder == 0)
            {
                // First admission; a resumed request keeps its place among the old ones.
                r.AdmitOrder = ++_admitCounter;
                r.AdmittedAt = Stopwatch.GetTimestamp();
                var prompt = r.Request.PromptTokens.Length;
                _promptTotal += prompt;
                _cacheQueries++;
                _cacheQueryTokens += prompt;
                if (reuse[0].Length > 0)
                {
                    _cacheHits++;
                    _cacheHitTokens += reuse[0].Length;
                }

                r.CachedTokens = reuse[0].Length;
            }

            foreach (var c in choices)
            {
                c.Seq = _kv.Acquire(keep);
                c.WaitsForSibling = !r.Resumed && c != leaders[0];
            }

            for (var i = 0; i < leaders.Length; i++)
            {
                var (entry, length, source) = reuse[i];
                if (length == 0)
                {
                    continue;
                }

                var c = leaders[i];
                _kv.Share(source!.Value, c.Seq!.Value, length);
                c.Tokens.AddRange(c.Source.AsSpan(0, length));
                c.PromptPos = length;
                if (entry != null)
                {
                    _kv.Touch(entry);
                }
            }
        }
    }

    private void PublishStats()
    {
        _stats = new EngineStats
        {
            Running = _running.Count,
            Waiting = _waiting.Count,
            KvCellsUsed = _kv.Used,
            KvCellsReclaimable = _kv.Reclaimable,
            KvCellsTotal = _nCtx,
            CachedPrefixes = _kv.CachedPrefixes,
            PrefixCacheQueries = _cacheQueries,
            PrefixCacheHits = _cacheHits,
            PrefixCacheQueryTokens = _cacheQueryTokens,
            PrefixCacheHitTokens = _cacheHitTokens,
            DecodeCalls = _decodeCalls,
            TokensDecoded = _tokensDecoded,
            MaxSequencesPerDecode = _maxSeqPerDecode,
            MaxTokensPerDecode = _maxTokensPerDecode,
            PromptTokensTotal = _promptTotal,
            GenerationTokensTotal = _genTotal,
            RequestsFinished = _finished,
            Preemptions = _preemptions,
            DecodesAborted = _decodesAborted,
        };
    }

    private void Shutdown()
    {
        lock (_inboxLock)
        {
            foreach (var r in _inbox)
            {
                _waiting.AddLast(r);
            }

            _inbox.Clear();
            foreach (var job in _jobs)
            {
                job();
            }

            _jobs.Clear();
        }

        foreach (var r in _running.ToArray().Concat(_waiting))
        {
            FailRequest(r, "engine_stopped", "the engine stopped");
        }

        _waiting.Clear();
        _embeddings.FailAll(new ObjectDisposedException(nameof(LlamaEngine)));
    }
}
