using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Engine;

/// <summary>
/// Token choice: a request's sampler chain, sampling from a decode's logits without llama.cpp's asserts, the
/// <c>min_tokens</c> ban on endings, and log-probabilities. One instance per engine; <see cref="Sample"/> and
/// <see cref="BanEndings"/> run on the inference thread only (they reuse buffers), the rest anywhere.
/// </summary>
internal sealed unsafe class Sampling(LlamaVocab vocab)
{
    public const int MaxTopLogprobs = 20;

    public const string NoValidToken =
        "no token can be sampled: the output's constraints (grammar or response_format, min_tokens, logit_bias) exclude every token";

    /// <summary>The candidate buffer <see cref="Sample"/> reuses.</summary>
    private LlamaTokenData[]? _candidates;
    private int[]? _eogTokens;

    /// <summary>The sampler chain of choice <paramref name="choice"/> of a request (the seed advances per choice).</summary>
    /// <exception cref="InvalidRequestException">The grammar is invalid.</exception>
    public SafeLlamaSamplerHandle BuildChain(GenerationRequest r, int choice)
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
                    chain.Add(NativeMethods.llama_sampler_init_logit_bias(vocab.Count, arr.Length, p), "logit_bias");
                }
            }

            if (s.RepetitionPenalty != 1f || s.PresencePenalty != 0f || s.FrequencyPenalty != 0f)
            {
                chain.Add(NativeMethods.llama_sampler_init_penalties(vocab.Count, s.PenaltyLastN, s.RepetitionPenalty, s.FrequencyPenalty, s.PresencePenalty), "penalties");
            }

            if (!string.IsNullOrWhiteSpace(r.Grammar))
            {
                var g = NativeMethods.llama_sampler_init_grammar(vocab.Handle, r.Grammar, "root");
                if (g == IntPtr.Zero)
                {
                    throw new InvalidRequestException("the grammar is invalid (GBNF with a 'root' rule expected)") { Field = "grammar" };
                }

                chain.Add(g, "grammar");
            }

            if (s.Temperature <= 0f)
            {
                chain.GreedyOnly = chain.Count == 0;
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

    /// <summary>
    /// llama_sampler_sample without its asserts: the chain ranks the candidates, and a step where it left none
    /// (a grammar at a dead end, or only ending tokens allowed while min_tokens bans them) returns -1 instead of
    /// accepting an excluded token, which llama.cpp answers with an abort or a C++ exception that ends the process.
    /// </summary>
    public int Sample(SafeLlamaSamplerHandle sampler, ReadOnlySpan<float> logits)
    {
        if (sampler.GreedyOnly)
        {
            // What llama.cpp's greedy sampler picks (the first highest logit), without building the candidates.
            var best = ArgMax(logits);
            return float.IsNaN(logits[best]) || float.IsNegativeInfinity(logits[best]) ? -1 : best;
        }

        var candidates = _candidates ??= new LlamaTokenData[vocab.Count];
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
            if (float.IsNaN(chosen.Logit) || float.IsNegativeInfinity(chosen.Logit) || !vocab.Contains(chosen.Id))
            {
                return -1;
            }

            NativeMethods.llama_sampler_accept(sampler, chosen.Id);
            return chosen.Id;
        }
    }

    /// <summary>The index of the first highest value, as llama.cpp's greedy sampler compares (a NaN never wins).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>
    /// min_tokens: the samplers read the context's logits, so writing -inf there keeps every ending token
    /// (end-of-generation and the stop token ids) out of this step's candidates, whatever the chain holds.
    /// </summary>
    public void BanEndings(Span<float> logits, IReadOnlyList<int>? stopTokenIds)
    {
        _eogTokens ??= Enumerable.Range(0, vocab.Count).Where(vocab.IsEndOfGeneration).ToArray();
        foreach (var t in _eogTokens.Concat(stopTokenIds ?? []))
        {
            if (vocab.Contains(t))
            {
                logits[t] = float.NegativeInfinity;
            }
        }
    }

    /// <summary>The log-probability of <paramref name="token"/>, and the <paramref name="k"/> most likely tokens (null when k is 0).</summary>
    public (float Logprob, IReadOnlyList<TokenLogprob>? Top) Logprobs(ReadOnlySpan<float> logits, int token, int k)
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

        return (logits[token] - logZ, best.Select(b => new TokenLogprob(b.Id, vocab.TokenText(b.Id, special: false), b.Logit - logZ)).ToArray());
    }
}
