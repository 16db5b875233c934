namespace KServe.Node.Llama.Tests;

/// <summary>The engine on the real llama.cpp library and a generated tiny F32 model.</summary>
public sealed class EngineTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private LlamaEngine Engine => fixture.Engine;

    private static readonly string[] Prompts =
    [
        "The quick brown fox jumps over the lazy dog.",
        "Once upon a time, in a land far away,",
        "Kubernetes schedules pods onto nodes",
        "def fibonacci(n):",
        "The capital of France is",
        "A node-level cache keeps models close to the GPU.",
        "Twinkle, twinkle, little star,",
        "SELECT * FROM models WHERE",
    ];

    [Fact]
    public async Task Greedy_output_is_the_same_alone_and_in_a_batch_of_8_that_shared_decode_calls()
    {
        const int MaxTokens = 24;
        var prompts = Prompts.Select(p => Engine.Tokenize(p, addSpecial: true, parseSpecial: false)).ToArray();
        var solo = new List<RunResult>();
        foreach (var p in prompts)
        {
            solo.Add(await Runs.Solo(Engine, Runs.GreedyWithLogprobs(p, MaxTokens)));
        }

        var before = Engine.Stats;
        var handles = Engine.SubmitAll(prompts.Select(p => Runs.GreedyWithLogprobs(p, MaxTokens)).ToArray());
        var results = await Task.WhenAll(handles.Select(h => Runs.Collect(h)));
        var after = Engine.Stats;

        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(MaxTokens, results[i][0].Tokens.Count);
            Runs.AssertGreedyClose(solo[i], results[i][0], $"prompt {i}");
            Assert.Equal(FinishReason.Length, results[i][0].Finished.Reason);
        }

        // Proof of sharing: 8 sequences in one llama_decode, every request batched with others for (nearly) all its
        // steps, and far fewer decode calls than 8 separate streams would need.
        var calls = after.DecodeCalls - before.DecodeCalls;
        var tokens = after.TokensDecoded - before.TokensDecoded;
        Assert.Equal(8, after.MaxSequencesPerDecode);
        Assert.True(calls <= MaxTokens + 1, $"{calls} decode calls for 8 x {MaxTokens} tokens");
        Assert.Equal(prompts.Sum(p => p.Length) + 8 * (MaxTokens - 1) - (after.PrefixCacheHitTokens - before.PrefixCacheHitTokens), tokens);
        Assert.All(handles, h => Assert.True(h.SharedDecodeCalls >= MaxTokens - 1, $"request {h.Id} shared {h.SharedDecodeCalls} calls"));
    }

    [Fact]
    public async Task A_shared_prefix_is_reused_and_only_the_suffix_is_decoded_with_the_cold_output()
    {
        var prefix = Engine.Tokenize(string.Join(' ', Enumerable.Repeat("You are a helpful assistant that answers briefly and precisely.", 6)), true, false);
        var a = prefix.Concat(Engine.Tokenize(" Question: what is an apple?", false, false)).ToArray();
        var b = prefix.Concat(Engine.Tokenize(" Question: why is the sky blue?", false, false)).ToArray();
        var lcp = a.AsSpan().CommonPrefixLength(b);
        Assert.True(lcp >= prefix.Length);

        RunResult cold;
        await using (var coldEngine = TestModels.Start(o => o.PrefixCacheSequences = 0))
        {
            cold = await Runs.Solo(coldEngine, Runs.GreedyWithLogprobs(b, 16));
            Assert.Equal(0, cold.Finished.CachedPromptTokens);
            Assert.Equal(b.Length, cold.Finished.PromptTokensDecoded);
        }

        await Runs.Solo(Engine, Runs.Greedy(a, 4));
        var warm = await Runs.Solo(Engine, Runs.GreedyWithLogprobs(b, 16));

        Assert.Equal(lcp, warm.Finished.CachedPromptTokens);
        Assert.Equal(b.Length - lcp, warm.Finished.PromptTokensDecoded);
        Runs.AssertGreedyClose(cold, warm, "cold vs cached prefix");
    }

    [Fact]
    public async Task A_request_reuses_the_prefix_of_a_sequence_that_is_still_running()
    {
        // No cached prefixes at all: a reuse can only come from the running sequence.
        await using var engine = TestModels.Start(o => o.PrefixCacheSequences = 0);
        var prefix = engine.Tokenize(string.Join(' ', Enumerable.Repeat("Shared system prompt for concurrent requests.", 5)), true, false);
        var a = prefix.Concat(engine.Tokenize(" First user turn.", false, false)).ToArray();
        var b = prefix.Concat(engine.Tokenize(" Second user turn, different.", false, false)).ToArray();
        var coldB = await Runs.Solo(engine, Runs.GreedyWithLogprobs(b, 8));
        Assert.Equal(0, coldB.Finished.CachedPromptTokens);

        using var cancelA = new CancellationTokenSource();
        var handleA = engine.Submit(Runs.Greedy(a, engine.Model.ContextSize - a.Length - 1, ct: cancelA.Token));
        using var timeout = new CancellationTokenSource(Runs.Timeout);
        Assert.True(await handleA.Events.WaitToReadAsync(timeout.Token)); // A has decoded its prompt and is generating
        var warmB = await Runs.Solo(engine, Runs.GreedyWithLogprobs(b, 8));
        await cancelA.CancelAsync();
        Assert.Equal(FinishReason.Cancelled, (await Runs.Collect(handleA))[0].Finished.Reason);

        Assert.True(warmB.Finished.CachedPromptTokens >= prefix.Length, $"{warmB.Finished.CachedPromptTokens} cached");
        Assert.Equal(b.Length - warmB.Finished.CachedPromptTokens, warmB.Finished.PromptTokensDecoded);
        Runs.AssertGreedyClose(coldB, warmB, "cold vs prefix of a running sequence");
    }

    [Fact]
    public async Task Cancelling_one_running_sequence_leaves_the_others_unchanged_and_frees_its_KV()
    {
        const int MaxTokens = 64;
        var prompts = Prompts.Take(3).Select(p => Engine.Tokenize(p + " (cancel test)", true, false)).ToArray();
        var expected = new List<RunResult>();
        foreach (var p in prompts)
        {
            expected.Add(await Runs.Solo(Engine, Runs.GreedyWithLogprobs(p, MaxTokens)));
        }

        using var cancel = new CancellationTokenSource();
        var handles = Engine.SubmitAll([
            Runs.GreedyWithLogprobs(prompts[0], MaxTokens),
            Runs.GreedyWithLogprobs(prompts[1], MaxTokens, ct: cancel.Token),
            Runs.GreedyWithLogprobs(prompts[2], MaxTokens),
        ]);

        // Wait until the victim is running (it has produced tokens), then cancel it mid-stream.
        using var timeout = new CancellationTokenSource(Runs.Timeout);
        var victimTokens = 0;
        var seen = new List<GenerationEvent>();
        int[] victimSeqs = [];
        while (await handles[1].Events.WaitToReadAsync(timeout.Token))
        {
            if (handles[1].Events.TryRead(out var e))
            {
                seen.Add(e);
                if (e is TokenEvent && ++victimTokens == 3)
                {
                    victimSeqs = await Engine.SequenceIdsAsync(handles[1]);
                    await cancel.CancelAsync();
                    break;
                }
            }
        }

        Assert.Single(victimSeqs);
        var rest = await Runs.Collect(handles[1]);
        var others = await Task.WhenAll(Runs.Collect(handles[0]), Runs.Collect(handles[2]));

        Assert.Equal(FinishReason.Cancelled, rest[0].Finished.Reason);
        Assert.True(rest[0].Finished.CompletionTokens < MaxTokens);
        Runs.AssertGreedyClose(expected[0], others[0][0], "survivor 0");
        Runs.AssertGreedyClose(expected[2], others[1][0], "survivor 2");
        Assert.Equal(-1, await Engine.SequencePosMaxAsync(victimSeqs[0]));
    }

    [Fact]
    public async Task A_stop_string_split_across_tokens_ends_generation_and_never_reaches_the_stream()
    {
        var prompt = Engine.Tokenize("Once upon a time there was a model that", true, false);
        var full = await Runs.Solo(Engine, Runs.Greedy(prompt, 40));
        var pieces = full.Events.Select(e => e.Text).ToList();

        // A stop string made of the end of one token's text and the start of the next one's.
        var k = Enumerable.Range(3, pieces.Count - 4).First(i => pieces[i].Length >= 2 && pieces[i + 1].Length >= 2);
        var stop = pieces[k][^2..] + pieces[k + 1][..2];
        var cut = full.Text.IndexOf(stop, StringComparison.Ordinal);
        Assert.True(cut >= 0);

        var stopped = await Runs.Solo(Engine, Runs.Greedy(prompt, 40, stop: [stop, "never-produced-xyzzy"]));

        Assert.Equal(FinishReason.Stop, stopped.Finished.Reason);
        Assert.Equal(stop, stopped.Finished.StopString);
        Assert.Equal(full.Text[..cut], stopped.Text);
        Assert.DoesNotContain(stop, stopped.Text, StringComparison.Ordinal);
        Assert.True(stopped.Finished.CompletionTokens <= k + 2);
    }

    [Fact]
    public async Task N_choices_share_the_prompt_KV_and_greedy_choices_agree()
    {
        var prompt = Engine.Tokenize("Three choices from one prompt:", true, false);
        var solo = await Runs.Solo(Engine, Runs.GreedyWithLogprobs(prompt, 12) with { N = 1 });
        var handle = Engine.Submit(Runs.GreedyWithLogprobs(prompt, 12) with { N = 3 });
        var results = await Runs.Collect(handle, 3);

        Assert.All(results, r => Runs.AssertGreedyClose(solo, r, "choice"));
        Assert.Equal(0, results[1].Finished.PromptTokensDecoded);
        Assert.Equal(0, results[2].Finished.PromptTokensDecoded);
    }

    [Fact]
    public async Task Seeded_sampling_is_reproducible_and_honours_top_k_1()
    {
        var prompt = Engine.Tokenize("Sampling with a seed", true, false);
        var sampling = new SamplingParams { Temperature = 0.9f, TopP = 0.95f, TopK = 50, MinP = 0.01f, Seed = 7, PresencePenalty = 0.5f, FrequencyPenalty = 0.3f, RepetitionPenalty = 1.1f };
        var one = await Runs.Solo(Engine, new GenerationRequest(prompt, sampling, 16, [], IgnoreEos: true));
        var two = await Runs.Solo(Engine, new GenerationRequest(prompt, sampling, 16, [], IgnoreEos: true));
        var topK1 = await Runs.Solo(Engine, new GenerationRequest(prompt, new SamplingParams { Temperature = 1.5f, TopK = 1, Seed = 3 }, 16, [], IgnoreEos: true));
        var greedy = await Runs.Solo(Engine, Runs.Greedy(prompt, 16));

        Assert.Equal(one.Tokens, two.Tokens);
        Assert.Equal(greedy.Tokens, topK1.Tokens);
    }

    [Fact]
    public async Task Logit_bias_bans_a_token_and_logprobs_report_the_chosen_token()
    {
        var prompt = Engine.Tokenize("Logit bias", true, false);
        var greedy = await Runs.Solo(Engine, Runs.Greedy(prompt, 1) with { TopLogprobs = 3 });
        var first = greedy.Tokens[0];
        var ev = greedy.Events[0];
        Assert.NotNull(ev.Logprob);
        Assert.True(ev.Logprob <= 0);
        Assert.Equal(3, ev.TopLogprobs!.Count);
        Assert.Equal(first, ev.TopLogprobs[0].TokenId);
        Assert.Equal(ev.Logprob!.Value, ev.TopLogprobs[0].Logprob, 4);

        var banned = await Runs.Solo(Engine, new GenerationRequest(prompt, SamplingParams.Greedy with { LogitBias = new Dictionary<int, float> { [first] = -1000f } }, 1, [], IgnoreEos: true));
        Assert.NotEqual(first, banned.Tokens[0]);
        Assert.Equal(ev.TopLogprobs[1].TokenId, banned.Tokens[0]);
    }

    [Fact]
    public async Task A_grammar_constrains_the_output()
    {
        var prompt = Engine.Tokenize("Answer yes or no:", true, false);
        var r = await Runs.Solo(Engine, new GenerationRequest(prompt, SamplingParams.Greedy, 20, [], Grammar: "root ::= (\"yes\" | \"no\") \".\""));

        Assert.Contains(r.Text, new[] { "yes.", "no." });
        Assert.Equal(FinishReason.Stop, r.Finished.Reason);
    }

    [Fact]
    public void Bad_requests_are_refused_naming_the_problem()
    {
        var prompt = Engine.Tokenize("x", true, false);
        Assert.Equal("max_tokens", Assert.Throws<InvalidRequestException>(() => Engine.Submit(Runs.Greedy(prompt, 0))).Field);
        Assert.Equal("prompt", Assert.Throws<InvalidRequestException>(() => Engine.Submit(Runs.Greedy([], 4))).Field);
        Assert.Equal("prompt", Assert.Throws<InvalidRequestException>(() => Engine.Submit(Runs.Greedy([999_999], 4))).Field);
        Assert.Equal("grammar", Assert.Throws<InvalidRequestException>(() => Engine.Submit(Runs.Greedy(prompt, 4) with { Grammar = "root ::= (" })).Field);
        Assert.Throws<ArgumentException>(() => Engine.Submit(new GenerationRequest(prompt, new SamplingParams { TopP = 0 }, 4, [])));
        var e = Assert.Throws<ContextLengthExceededException>(() => Engine.Submit(Runs.Greedy(prompt, Engine.Model.ContextSize)));
        Assert.Equal(Engine.Model.ContextSize, e.ContextSize);
    }

    [Fact]
    public void Tokenize_and_detokenize_round_trip_with_the_real_vocabulary()
    {
        var text = "Hello world, this is KServe Node.";
        var tokens = Engine.Tokenize(text, addSpecial: true, parseSpecial: false);

        Assert.Equal(Engine.Model.BosTokenId, tokens[0]);
        Assert.Equal(1, tokens[0]);
        Assert.Equal(text, Engine.Detokenize(tokens.AsSpan(1)).TrimStart());
        Assert.Equal(32000, Engine.Model.VocabSize);
        Assert.Equal("llama", Engine.Model.Facts.Architecture);
        Assert.Equal("</s>", Engine.Model.EosToken);
    }

    [Fact]
    public async Task Embeddings_are_pooled_unit_vectors()
    {
        var a = Engine.Tokenize("first input", true, false);
        var b = Engine.Tokenize("a different second input", true, false);
        var vectors = await Engine.EmbedAsync([a, b, a], CancellationToken.None);

        Assert.Equal(3, vectors.Length);
        Assert.All(vectors, v => Assert.Equal(Engine.Model.EmbeddingSize, v.Length));
        Assert.All(vectors, v => Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 3));
        // One decode holds all three; the same input in two sequences of that batch pools to the same vector
        // (up to float rounding: the batch's matrix shapes differ from a solo decode's).
        AssertClose(vectors[0], vectors[2]);
        Assert.NotEqual(vectors[0], vectors[1]);
        var alone = await Engine.EmbedAsync([b], CancellationToken.None);
        AssertClose(alone[0], vectors[1]);
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-4, $"component {i}: {expected[i]} vs {actual[i]}");
        }
    }
}
