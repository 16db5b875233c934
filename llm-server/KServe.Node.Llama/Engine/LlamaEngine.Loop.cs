using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using KServe.Node.Llama.Engine;
using KServe.Node.Llama.Native;

namespace KServe.Node.Llama;

public sealed unsafe partial class LlamaEngine
{
    private const int MaxTopLogprobs = 20;
    private LlamaBatch _embedBatch;

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
            if ((uint)t >= (uint)_nVocab)
            {
                throw new InvalidRequestException($"prompt token {t} is outside the vocabulary (0..{_nVocab - 1})") { Field = "prompt" };
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

        if (r.TopLogprobs is < -1 or > MaxTopLogprobs)
        {
            throw new InvalidRequestException($"top_logprobs must be 0..{MaxTopLogprobs}") { Field = "top_logprobs" };
        }

        r.Sampling.Validate();
        if (r.Sampling.LogitBias is { } bias && bias.Keys.Any(k => (uint)k >= (uint)_nVocab))
        {
            throw new InvalidRequestException($"logit_bias names a token outside the vocabulary (0..{_nVocab - 1})") { Field = "logit_bias" };
        }

        var need = (long)r.PromptTokens.Length + (long)r.N * r.MaxTokens;
        if (need > _nCtx)
        {
            throw new ContextLengthExceededException(
                $"the prompt has {r.PromptTokens.Length} tokens and {r.N} x max_tokens {r.MaxTokens} more are requested, but the context holds {_nCtx} tokens")
            { PromptTokens = r.PromptTokens.Length, ContextSize = _nCtx };
        }

        var id = Interlocked.Increment(ref _nextRequestId);
        var channel = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });
        var state = new RequestState(id, r, channel, new GenerationHandle(id, channel.Reader, r.PromptTokens.Length));
        var choices = new ChoiceState[r.N];
        try
        {
            for (var i = 0; i < r.N; i++)
            {
                choices[i] = new ChoiceState(state, i, BuildSampler(r, i));
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

    private SafeLlamaSamplerHandle BuildSampler(GenerationRequest r, int choice)
    {
        var s = r.Sampling;
        var chain = SafeLlamaSamplerHandle.CreateChain();
        try
        {
            if (s.LogitBias is { Count: > 0 } bias)
            {
                var arr = bias.Select(kv => new LlamaLogitBias { Token = kv.Key, Bias = kv.Value }).ToArray();
                fixed (LlamaLogitBias* p = arr)
                {
                    chain.Add(NativeMethods.llama_sampler_init_logit_bias(_nVocab, arr.Length, p), "logit_bias");
                }
            }

            if (s.RepetitionPenalty != 1f || s.PresencePenalty != 0f || s.FrequencyPenalty != 0f)
            {
                chain.Add(NativeMethods.llama_sampler_init_penalties(_nVocab, s.PenaltyLastN, s.RepetitionPenalty, s.FrequencyPenalty, s.PresencePenalty), "penalties");
            }

            if (!string.IsNullOrWhiteSpace(r.Grammar))
            {
                var g = NativeMethods.llama_sampler_init_grammar(_vocab, r.Grammar, "root");
                if (g == IntPtr.Zero)
                {
                    throw new InvalidRequestException("the grammar is invalid (GBNF with a 'root' rule expected)") { Field = "grammar" };
                }

                chain.Add(g, "grammar");
            }

            if (s.Temperature <= 0f)
            {
                chain.Add(NativeMethods.llama_sampler_init_greedy(), "greedy");
            }
            else
            {
                if (s.TopK > 0)
                {
                    chain.Add(NativeMethods.llama_sampler_init_top_k(s.TopK), "top_k");
                }

                if (s.TopP < 1f)
                {
                    chain.Add(NativeMethods.llama_sampler_init_top_p(s.TopP, 1), "top_p");
                }

                if (s.MinP > 0f)
                {
                    chain.Add(NativeMethods.llama_sampler_init_min_p(s.MinP, 1), "min_p");
                }

                if (s.TypicalP < 1f)
                {
                    chain.Add(NativeMethods.llama_sampler_init_typical(s.TypicalP, 1), "typical_p");
                }

                chain.Add(NativeMethods.llama_sampler_init_temp(s.Temperature), "temperature");
                var seed = s.Seed is { } fixedSeed ? unchecked(fixedSeed + (uint)choice) : (uint)Random.Shared.Next();
                chain.Add(NativeMethods.llama_sampler_init_dist(seed), "dist");
            }

            return chain;
        }
        catch
        {
            chain.Dispose();
            throw;
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
        var embedded = EmbedStep();
        didWork |= embedded > 0 || _embeddingJobs.Count > 0;

        var active = new List<ChoiceState>();
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

        var plan = Scheduler.PlanStep(
            active.Select((c, i) => new SchedSequence(i, c.PromptRemaining, c.PendingToken >= 0 && c.PromptRemaining == 0, c.Owner.AdmitOrder)).ToList(),
            Math.Max(_budget - embedded, _options.MaxParallelSequences));
        if (plan.Count == 0)
        {
            return didWork;
        }

        if (!MakeRoom(plan.Sum(p => p.Tokens)))
        {
            // A request was preempted: the next step plans without it.
            return true;
        }

        var n = 0;
        var requests = new HashSet<RequestState>();
        foreach (var slice in plan)
        {
            var c = active[slice.Key];
            requests.Add(c.Owner);
            if (!slice.IsPrompt)
            {
                c.BatchOutput = n;
                Put(n++, c.PendingToken, c.Tokens.Count, c.SeqId, true);
                continue;
            }

            var source = c.Source;
            for (var j = 0; j < slice.Tokens; j++)
            {
                var idx = c.PromptPos + j;
                // The prompt's last token gives the first sample; a recomputed choice already holds its next token.
                var last = idx == source.Length - 1 && c.PendingToken < 0;
                if (last)
                {
                    c.BatchOutput = n;
                }

                Put(n++, source[idx], c.Tokens.Count + j, c.SeqId, last);
            }
        }

        _batch.NTokens = n;
        _decoding = [.. requests];
        var rc = (DecodeResult)NativeMethods.llama_decode(_ctx, _batch);
        _decoding = null;
        _decodeCalls++;
        if (rc != DecodeResult.Ok)
        {
            foreach (var slice in plan)
            {
                var c = active[slice.Key];
                c.BatchOutput = -1;
                // Whatever a failed decode left beyond the committed tokens is not ours to keep.
                NativeMethods.llama_memory_seq_rm(_memory, c.SeqId, c.Tokens.Count, -1);
            }

            HandleDecodeFailure(rc, n, requests);
            return true;
        }

        _tokensDecoded += n;
        _maxTokensPerDecode = Math.Max(_maxTokensPerDecode, n);
        _maxSeqPerDecode = Math.Max(_maxSeqPerDecode, plan.Count);
        if (requests.Count > 1)
        {
            foreach (var r in requests)
            {
                Interlocked.Increment(ref r.Handle.SharedDecodeCalls);
            }
        }

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

            _ledger.Grow(c.SeqId, c.Tokens.Count);
        }

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

    private void Put(int i, int token, int pos, int seq, bool output)
    {
        _batch.Token[i] = token;
        _batch.Pos[i] = pos;
        _batch.NSeqId[i] = 1;
        _batch.SeqId[i][0] = seq;
        _batch.Logits[i] = output ? (sbyte)1 : (sbyte)0;
    }

    /// <summary>
    /// ggml's abort callback, called between graph nodes of a decode: a long prompt decode stops as soon as every
    /// request in it is cancelled or the engine stops, instead of running to its end.
    /// </summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte AbortDecode(IntPtr data)
    {
        if (GCHandle.FromIntPtr(data).Target is not LlamaEngine engine || engine._decoding is not { } requests)
        {
            return 0;
        }

        if (engine._stop.IsCancellationRequested)
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

    private void HandleDecodeFailure(DecodeResult rc, int tokens, HashSet<RequestState> requests)
    {
        if (rc == DecodeResult.Aborted)
        {
            // Every request of the decode was cancelled (or the engine stops): the next step's sweep frees them.
            Log.DecodeAborted(_logger, tokens);
            _decodesAborted++;
            return;
        }

        if (rc == DecodeResult.NoKvSlot)
        {
            // The ledger said the step fits and llama.cpp found no slot (cells it keeps for itself): free one cached
            // prefix, else preempt the youngest request, and plan again. Never the whole cache, never a kill.
            Log.NoKvSlot(_logger, tokens, _ledger.Used);
            if (_prefixCache.EvictLeastRecentlyUsed() is { } e)
            {
                FreeSeq(e.SeqId);
                return;
            }

            if (_running.Count > 1)
            {
                Preempt(Youngest());
                return;
            }

            foreach (var r in requests)
            {
                FailRequest(r, "kv_cache_exhausted", "the KV cache cannot hold this request even alone; lower max_tokens or n");
            }

            return;
        }

        foreach (var r in requests)
        {
            FailRequest(r, "internal_error", $"llama_decode failed with {(int)rc}");
        }
    }

    /// <summary>
    /// Makes room in the KV cache for the <paramref name="tokens"/> the next step adds: least-recently-used cached
    /// prefixes go first, one at a time, then the youngest running request is preempted. False when a request was
    /// preempted (the step must be planned again).
    /// </summary>
    private bool MakeRoom(int tokens)
    {
        while (_ledger.Used + tokens > _nCtx)
        {
            if (_prefixCache.EvictLeastRecentlyUsed() is { } e)
            {
                FreeSeq(e.SeqId);
                continue;
            }

            // A request alone always fits (Prepare checks prompt + n x max_tokens); with others it waits its turn.
            if (_running.Count < 2)
            {
                return true;
            }

            Preempt(Youngest());
            return false;
        }

        return true;
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
        Log.Preempted(_logger, r.Id, r.Choices.Sum(c => c.Done ? 0 : c.Tokens.Count), _ledger.Used, _nCtx);
        foreach (var c in r.Choices)
        {
            if (c.Done)
            {
                continue;
            }

            if (c.SeqId >= 0)
            {
                ReleaseSequence(c, keep: true);
            }

            c.SeqId = -1;
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

    /// <summary>
    /// Lets go of a choice's sequence: with <paramref name="keep"/> (and a prefix cache that can reuse it) its cells stay
    /// as a cached prefix, evicting the least recently used one when the cache is full; otherwise they are freed.
    /// </summary>
    private void ReleaseSequence(ChoiceState c, bool keep)
    {
        if (keep && c.Tokens.Count > 0 && _prefixCache.Capacity > 0 && _partialReuse)
        {
            if (_prefixCache.Add(new CachedPrefix(c.SeqId, c.Tokens.ToArray(), _prefixCache.Tick())) is { } evicted)
            {
                FreeSeq(evicted.SeqId);
            }
        }
        else
        {
            FreeSeq(c.SeqId);
        }
    }

    /// <summary>The preemption victim: the most recently admitted running request.</summary>
    private RequestState Youngest()
    {
        var victim = Scheduler.PickVictim(_running.Select(r => (r.Id, r.AdmitOrder)));
        return _running.First(r => r.Id == victim);
    }

    private void SampleAndPublish(ChoiceState c, int idx)
    {
        if (c.Completion < c.Owner.Request.MinTokens)
        {
            BanEndings(c.Owner.Request, idx);
        }

        var token = Sample(c.Sampler, idx);
        if (c.Index == 0)
        {
            foreach (var sib in c.Owner.Choices)
            {
                if (!sib.WaitsForSibling || sib.Done)
                {
                    continue;
                }

                // n > 1: the siblings share the prompt's KV cells instead of decoding the prompt again.
                NativeMethods.llama_memory_seq_cp(_memory, c.SeqId, sib.SeqId, -1, -1);
                _ledger.Copy(c.SeqId, sib.SeqId, c.Tokens.Count);
                sib.Tokens.AddRange(c.Tokens);
                sib.PromptPos = c.PromptPos;
                sib.WaitsForSibling = false;
                Accept(sib, Sample(sib.Sampler, idx), idx);
            }
        }

        Accept(c, token, idx);
    }

    private const string NoValidToken =
        "no token can be sampled: the output's constraints (grammar or response_format, min_tokens, logit_bias) exclude every token";

    /// <summary>
    /// llama_sampler_sample without its asserts: the chain ranks the candidates, and a step where it left none
    /// (a grammar at a dead end, or only ending tokens allowed while min_tokens bans them) returns -1 instead of
    /// accepting an excluded token, which llama.cpp answers with an abort or a C++ exception that ends the process.
    /// </summary>
    private int Sample(SafeLlamaSamplerHandle sampler, int idx)
    {
        var logits = new ReadOnlySpan<float>(NativeMethods.llama_get_logits_ith(_ctx, idx), _nVocab);
        var candidates = _candidates ??= new LlamaTokenData[_nVocab];
        for (var i = 0; i < candidates.Length; i++)
        {
            candidates[i] = new LlamaTokenData { Id = i, Logit = logits[i] };
        }

        fixed (LlamaTokenData* data = candidates)
        {
            var array = new LlamaTokenDataArray { Data = data, Size = (nuint)candidates.Length, Selected = -1 };
            NativeMethods.llama_sampler_apply(sampler, &array);
            if (array.Selected < 0 || array.Selected >= (long)array.Size)
            {
                return -1;
            }

            var chosen = array.Data[array.Selected];
            if (float.IsNaN(chosen.Logit) || float.IsNegativeInfinity(chosen.Logit) || (uint)chosen.Id >= (uint)_nVocab)
            {
                return -1;
            }

            NativeMethods.llama_sampler_accept(sampler, chosen.Id);
            return chosen.Id;
        }
    }

    /// <summary>
    /// min_tokens: the samplers read the context's logits, so writing -inf there keeps every ending token
    /// (end-of-generation and the stop token ids) out of this step's candidates, whatever the chain holds.
    /// </summary>
    private void BanEndings(GenerationRequest req, int idx)
    {
        var logits = NativeMethods.llama_get_logits_ith(_ctx, idx);
        _eogTokens ??= Enumerable.Range(0, _nVocab).Where(t => NativeMethods.llama_vocab_is_eog(_vocab, t)).ToArray();
        foreach (var t in _eogTokens.Concat(req.StopTokenIds ?? []))
        {
            if (t >= 0 && t < _nVocab)
            {
                logits[t] = float.NegativeInfinity;
            }
        }
    }

    private void Accept(ChoiceState c, int token, int idx)
    {
        if (token < 0)
        {
            FinishChoice(c, FinishReason.Error, null, "no_valid_token", NoValidToken);
            return;
        }

        var req = c.Owner.Request;
        if (c.Owner.FirstTokenAt == 0)
        {
            c.Owner.FirstTokenAt = System.Diagnostics.Stopwatch.GetTimestamp();
        }

        if ((!req.IgnoreEos && NativeMethods.llama_vocab_is_eog(_vocab, token)) || (req.StopTokenIds is { Count: > 0 } stopIds && stopIds.Contains(token)))
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
            (logprob, top) = Logprobs(idx, token, req.TopLogprobs);
        }

        int len;
        fixed (byte* b = _pieceBuffer)
        {
            len = NativeMethods.llama_token_to_piece(_vocab, token, b, _pieceBuffer.Length, 0, req.RenderSpecialTokens);
        }

        var (release, stop) = c.Text.Push(_pieceBuffer.AsSpan(0, Math.Max(0, len)));
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

    private (float, IReadOnlyList<TokenLogprob>?) Logprobs(int idx, int token, int k) =>
        Logprobs(new ReadOnlySpan<float>(NativeMethods.llama_get_logits_ith(_ctx, idx), _nVocab), token, k);

    /// <summary>Positions one scoring decode holds: its logits (positions x vocabulary floats) stay a few tens of MB.</summary>
    private const int ScoreChunk = 128;

    /// <summary>
    /// Prompt scoring in a context of its own, created on first use: the serving context keeps its KV and output
    /// buffer for generation, and scoring needs logits at every position.
    /// </summary>
    private PromptTokenLogprob[] ScorePrompt(int[] tokens, int topK, CancellationToken ct)
    {
        if (_scoreCtx == null)
        {
            var cp = NativeMethods.llama_context_default_params();
            cp.NCtx = (uint)_nCtx;
            cp.NBatch = ScoreChunk;
            cp.NUbatch = ScoreChunk;
            cp.NSeqMax = 1;
            cp.NThreads = _options.Threads;
            cp.NThreadsBatch = _options.BatchThreads > 0 ? _options.BatchThreads : _options.Threads;
            cp.NoPerf = 1;
            cp.Embeddings = 0;
            _scoreCtx = SafeLlamaContextHandle.Create(_model, cp);
            if (_threadpool != null)
            {
                NativeMethods.llama_attach_threadpool(_scoreCtx, _threadpool.Handle, _threadpoolBatch?.Handle ?? IntPtr.Zero);
            }

            _scoreBatch = NativeMethods.llama_batch_init(ScoreChunk, 0, 1);
        }

        var mem = NativeMethods.llama_get_memory(_scoreCtx);
        NativeMethods.llama_memory_clear(mem, true);
        var result = new PromptTokenLogprob[tokens.Length - 1];
        try
        {
            // The last token predicts nothing in the prompt: its logits are not needed.
            for (var start = 0; start < tokens.Length - 1; start += ScoreChunk)
            {
                ct.ThrowIfCancellationRequested();
                var n = Math.Min(ScoreChunk, tokens.Length - 1 - start);
                for (var i = 0; i < n; i++)
                {
                    _scoreBatch.Token[i] = tokens[start + i];
                    _scoreBatch.Pos[i] = start + i;
                    _scoreBatch.NSeqId[i] = 1;
                    _scoreBatch.SeqId[i][0] = 0;
                    _scoreBatch.Logits[i] = 1;
                }

                _scoreBatch.NTokens = n;
                var rc = NativeMethods.llama_decode(_scoreCtx, _scoreBatch);
                if (rc != 0)
                {
                    throw new InvalidOperationException($"scoring decode failed with {rc}");
                }

                for (var i = 0; i < n; i++)
                {
                    var next = tokens[start + i + 1];
                    var (lp, top) = Logprobs(new ReadOnlySpan<float>(NativeMethods.llama_get_logits_ith(_scoreCtx, i), _nVocab), next, topK);
                    result[start + i] = new PromptTokenLogprob(next, lp, top ?? []);
                }
            }

            return result;
        }
        finally
        {
            NativeMethods.llama_memory_clear(mem, true);
        }
    }

    private (float, IReadOnlyList<TokenLogprob>?) Logprobs(ReadOnlySpan<float> logits, int token, int k)
    {
        var max = float.NegativeInfinity;
        foreach (var x in logits)
        {
            max = Math.Max(max, x);
        }

        double sum = 0;
        foreach (var x in logits)
        {
            sum += Math.Exp(x - max);
        }

        var logZ = max + (float)Math.Log(sum);
        if (k == 0)
        {
            return (logits[token] - logZ, null);
        }

        var best = new List<(int Id, float Logit)>(k + 1);
        for (var i = 0; i < logits.Length; i++)
        {
            var v = logits[i];
            if (best.Count < k || v > best[^1].Logit)
            {
                var at = best.FindIndex(b => v > b.Logit);
                best.Insert(at < 0 ? best.Count : at, (i, v));
                if (best.Count > k)
                {
                    best.RemoveAt(k);
                }
            }
        }

        return (logits[token] - logZ, best.Select(b => new TokenLogprob(b.Id, TokenText(b.Id, special: false), b.Logit - logZ)).ToArray());
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

        // A caller that sees its request finish also sees the work it took in the engine's counters.
        PublishStats();
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        var admitted = r.AdmittedAt != 0 ? r.AdmittedAt : now;
        var firstToken = r.FirstTokenAt != 0 ? r.FirstTokenAt : now;
        r.Channel.Writer.TryWrite(new FinishedEvent(c.Index, reason, r.Request.PromptTokens.Length, r.CachedTokens, c.Completion, c.PromptDecoded, stop)
        {
            QueueSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(r.SubmittedAt, admitted).TotalSeconds,
            PrefillSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(admitted, firstToken).TotalSeconds,
            DecodeSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(firstToken, now).TotalSeconds,
            Preemptions = r.Preemptions,
        });
        c.Sampler.Dispose();
        if (c.SeqId >= 0)
        {
            // A finished sequence stays as a cached prefix until its cells are needed; a failed one is freed.
            ReleaseSequence(c, keep: reason is FinishReason.Stop or FinishReason.Length);
        }

        if (++r.Finished == r.Choices.Length)
        {
            r.Channel.Writer.TryComplete();
            _running.Remove(r);
            _waiting.Remove(r);
            _kvPressure = false;
            Interlocked.Decrement(ref _queued);
            _finished++;
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

    private void FreeSeq(int seqId)
    {
        NativeMethods.llama_memory_seq_rm(_memory, seqId, -1, -1);
        _ledger.Free(seqId);
        _freeSeqIds.Push(seqId);
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
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
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
            else if (timeout > 0 && r.AdmitOrder == 0 && System.Diagnostics.Stopwatch.GetElapsedTime(r.SubmittedAt, now).TotalSeconds > timeout)
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
    private (CachedPrefix? Entry, int Length, int Source) FindReuse(ReadOnlySpan<int> tokens, int max)
    {
        if (!_partialReuse)
        {
            return (null, 0, -1);
        }

        var (entry, reuse) = _prefixCache.FindLongest(tokens, max);
        var source = entry?.SeqId ?? -1;
        foreach (var running in _running)
        {
            foreach (var c in running.Choices)
            {
                if (!c.Done && !c.WaitsForSibling && c.SeqId >= 0)
                {
                    var l = Math.Min(Scheduler.CommonPrefix(tokens, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(c.Tokens)), max);
                    if (l > reuse)
                    {
                        (entry, reuse, source) = (null, l, c.SeqId);
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
            var reuse = new (CachedPrefix? Entry, int Length, int Source)[leaders.Length];
            var uncached = 0;
            for (var i = 0; i < leaders.Length; i++)
            {
                var c = leaders[i];
                reuse[i] = FindReuse(c.Source, c.PendingToken >= 0 ? c.Source.Length : c.Source.Length - 1);
                uncached += c.Source.Length - reuse[i].Length;
            }

            var keep = reuse.Where(u => u.Entry != null).Select(u => u.Entry!).ToHashSet();
            var free = _nCtx - _ledger.Used;
            var evictable = _ledger.FreedBy(_prefixCache.Entries.Where(e => !keep.Contains(e)).Select(e => e.SeqId).ToArray());
            if (!Scheduler.CanAdmit(RunningSequences, _options.MaxParallelSequences, choices.Length, free, evictable, uncached))
            {
                // FIFO: a request that does not fit blocks those behind it, so big requests are not starved.
                return;
            }

            while (_nCtx - _ledger.Used < uncached + choices.Length && _prefixCache.EvictLeastRecentlyUsed(keep) is { } e)
            {
                FreeSeq(e.SeqId);
            }

            _waiting.RemoveFirst();
            _running.Add(r);
            if (r.AdmitOrder == 0)
            {
                // First admission; a resumed request keeps its place among the old ones.
                r.AdmitOrder = ++_admitCounter;
                r.AdmittedAt = System.Diagnostics.Stopwatch.GetTimestamp();
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
                if (_freeSeqIds.Count == 0 && _prefixCache.EvictLeastRecentlyUsed(keep) is { } e)
                {
                    FreeSeq(e.SeqId);
                }

                c.SeqId = _freeSeqIds.Pop();
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
                NativeMethods.llama_memory_seq_cp(_memory, source, c.SeqId, 0, length);
                _ledger.Copy(source, c.SeqId, length);
                c.Tokens.AddRange(c.Source.AsSpan(0, length));
                c.PromptPos = length;
                if (entry != null)
                {
                    _prefixCache.Touch(entry);
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
            KvCellsUsed = _ledger.Used,
            KvCellsReclaimable = _ledger.FreedBy(_prefixCache.SequenceIds),
            KvCellsTotal = _nCtx,
            CachedPrefixes = _prefixCache.Count,
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
        while (_embeddingJobs.TryPeek(out var job))
        {
            EndEmbedding(job.Done.TrySetException(new ObjectDisposedException(nameof(LlamaEngine))));
        }

        if (_embedBatch.Token != null)
        {
            NativeMethods.llama_batch_free(_embedBatch);
            _embedBatch = default;
        }
    }

    private static void DisposeSamplers(RequestState s)
    {
        foreach (var c in s.Choices)
        {
            c.Sampler.Dispose();
        }
    }

    /// <summary>
    /// Sequences one embedding decode may hold. Each input is its own sequence in a unified KV pool, so a
    /// batch of short inputs costs one llama_decode instead of one per input.
    /// </summary>
    internal const int EmbeddingSequencesPerDecode = 64;

    private void EnsureEmbeddingContext()
    {
        if (_embedCtx != null)
        {
            return;
        }

        var cp = NativeMethods.llama_context_default_params();
        cp.NCtx = (uint)_options.EmbeddingContextSize;
        cp.NBatch = (uint)_options.EmbeddingContextSize;
        cp.NUbatch = (uint)_options.EmbeddingContextSize;
        cp.NSeqMax = EmbeddingSequencesPerDecode;
        cp.KvUnified = 1; // the inputs of one decode share the whole context, whatever their lengths
        cp.NThreads = _options.Threads;
        cp.NThreadsBatch = _options.BatchThreads > 0 ? _options.BatchThreads : _options.Threads;
        cp.Embeddings = 1;
        cp.PoolingType = Model.Facts.PoolingType is { } p and > 0 ? p : (int)PoolingType.Mean;
        cp.NoPerf = 1;
        cp.NOutputsMaxPerSeq = 0; // pooling reads every token's output
        _embedCtx = SafeLlamaContextHandle.Create(_model, cp);
        if (_threadpool != null)
        {
            NativeMethods.llama_attach_threadpool(_embedCtx, _threadpool.Handle, _threadpoolBatch?.Handle ?? IntPtr.Zero);
        }

        _embedBatch = NativeMethods.llama_batch_init(_options.EmbeddingContextSize, 0, 1);
    }

    /// <summary>An embeddings request being worked through, one decode a step.</summary>
    private sealed class EmbeddingJob(IReadOnlyList<int[]> inputs, CancellationToken ct)
    {
        public IReadOnlyList<int[]> Inputs { get; } = inputs;
        public CancellationToken Ct { get; } = ct;
        public float[][] Result { get; } = new float[inputs.Count][];
        public TaskCompletionSource<float[][]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The first input not embedded yet.</summary>
        public int Next { get; set; }
    }

    /// <summary>
    /// One embedding decode of the oldest embeddings request: the next inputs that fit the step's token budget
    /// (an input longer than the budget goes alone; pooling needs an input whole). Returns the tokens decoded.
    /// </summary>
    private int EmbedStep()
    {
        while (_embeddingJobs.TryPeek(out var job))
        {
            if (job.Ct.IsCancellationRequested)
            {
                EndEmbedding(job.Done.TrySetCanceled(job.Ct));
                continue;
            }

            try
            {
                EnsureEmbeddingContext();
                var first = job.Next;
                var limit = Math.Max(_budget, job.Inputs[first].Length);
                var tokens = 0;
                while (job.Next < job.Inputs.Count && job.Next - first < EmbeddingSequencesPerDecode && tokens + job.Inputs[job.Next].Length <= limit)
                {
                    tokens += job.Inputs[job.Next].Length;
                    job.Next++;
                }

                EmbedBatch(job.Inputs, first, job.Next, job.Result);
                if (job.Next == job.Inputs.Count)
                {
                    EndEmbedding(job.Done.TrySetResult(job.Result));
                }

                return tokens;
            }
            catch (Exception e)
            {
                EndEmbedding(job.Done.TrySetException(e));
            }
        }

        return 0;
    }

    /// <summary>Takes the oldest embeddings request off the queue; <paramref name="ended"/> is whether this ended its task (not a shutdown before).</summary>
    private void EndEmbedding(bool ended)
    {
        _embeddingJobs.Dequeue();
        if (ended)
        {
            Interlocked.Decrement(ref _queued);
        }
    }

    private void EmbedBatch(IReadOnlyList<int[]> inputs, int first, int end, float[][] result)
    {
        var mem = NativeMethods.llama_get_memory(_embedCtx!);
        NativeMethods.llama_memory_clear(mem, true);
        var n = 0;
        for (var k = first; k < end; k++)
        {
            var tokens = inputs[k];
            for (var i = 0; i < tokens.Length; i++)
            {
                _embedBatch.Token[n] = tokens[i];
                _embedBatch.Pos[n] = i;
                _embedBatch.NSeqId[n] = 1;
                _embedBatch.SeqId[n][0] = k - first;
                _embedBatch.Logits[n] = 1;
                n++;
            }
        }

        _embedBatch.NTokens = n;
        var rc = NativeMethods.llama_decode(_embedCtx!, _embedBatch);
        Interlocked.Increment(ref _embeddingDecodes);
        try
        {
            if (rc != 0)
            {
                throw new InvalidOperationException($"embedding decode failed with {rc}");
            }

            for (var k = first; k < end; k++)
            {
                var e = NativeMethods.llama_get_embeddings_seq(_embedCtx!, k - first);
                if (e == null)
                {
                    throw new InvalidOperationException("the model produced no pooled embedding");
                }

                result[k] = Normalized(new ReadOnlySpan<float>(e, Model.EmbeddingSize));
            }
        }
        finally
        {
            NativeMethods.llama_memory_clear(mem, true);
        }
    }

    private static float[] Normalized(ReadOnlySpan<float> pooled)
    {
        var v = pooled.ToArray();
        double norm = 0;
        foreach (var x in v)
        {
            norm += (double)x * x;
        }

        var scale = norm > 0 ? (float)(1.0 / Math.Sqrt(norm)) : 0f;
        for (var i = 0; i < v.Length; i++)
        {
            v[i] *= scale;
        }

        return v;
    }
}
