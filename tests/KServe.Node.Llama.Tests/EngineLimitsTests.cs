using KServe.Node.Llama.Native;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.Llama.Tests;

/// <summary>Engines with special settings: small KV caches, tiny queues, bad configuration.</summary>
public sealed class EngineLimitsTests
{
    /// <summary>
    /// A long prompt decode whose only request is cancelled stops part-way (ggml's abort callback) instead of
    /// running to its end. The cancel has to land while the decode runs, so the test tries growing delays until
    /// one does; each try must end cancelled with its sequence freed, and the aborted decode must not count.
    /// </summary>
    [Fact]
    public async Task Cancelling_the_only_request_of_a_long_prompt_decode_stops_it_part_way()
    {
        await using var engine = TestModels.Start(o =>
        {
            o.ContextSize = 8192; o.BatchSize = 8192; o.StepTokenBudget = 8192; o.MicroBatchSize = 256; o.MaxParallelSequences = 1; o.PrefixCacheSequences = 0;
        });
        var prompt = engine.Tokenize(string.Join(' ', Enumerable.Range(0, 1900).Select(w => $"t{w % 500}")), true, false);
        Assert.InRange(prompt.Length, 6000, 8000);
        for (var delay = 0; delay <= 400 && engine.Stats.DecodesAborted == 0; delay += 10)
        {
            using var cancel = new CancellationTokenSource();
            var handle = engine.Submit(Runs.Greedy(prompt, 100, ct: cancel.Token));
            await Task.Delay(delay, TestContext.Current.CancellationToken);
            var decoded = engine.Stats.TokensDecoded;
            await cancel.CancelAsync();
            var result = await Runs.Collect(handle);
            Assert.Equal(FinishReason.Cancelled, result[0].Finished.Reason);
            while (engine.Stats.Running + engine.Stats.Waiting > 0)
            {
                await Task.Delay(5, TestContext.Current.CancellationToken);
            }

            if (engine.Stats.DecodesAborted > 0)
            {
                // The aborted decode added no tokens: it never completed.
                Assert.True(engine.Stats.TokensDecoded - decoded < prompt.Length, "an aborted decode counted its tokens");
                TestContext.Current.TestOutputHelper?.WriteLine($"aborted after a {delay} ms delay");
            }
        }

        Assert.True(engine.Stats.DecodesAborted > 0, "no cancel landed during a decode, or the decode was not aborted");
        var (sequences, used, unknown) = await engine.LedgerCheckAsync();
        Assert.Empty(unknown);
        Assert.Empty(sequences);
        Assert.Equal(0, used);
    }

    /// <summary>
    /// An embeddings request of 16 inputs, with a step budget that holds one of them, takes 16 decodes; running
    /// generation keeps producing tokens between them instead of waiting for the whole request.
    /// </summary>
    [Fact]
    public async Task A_long_embeddings_request_shares_the_steps_with_running_generation()
    {
        await using var engine = TestModels.Start(o => { o.ContextSize = 4096; o.MaxParallelSequences = 2; o.StepTokenBudget = 64; });
        var inputs = Enumerable.Range(0, 16).Select(i => engine.Tokenize(string.Join(' ', Enumerable.Range(0, 16).Select(w => $"x{w + i}")), true, false)).ToArray();
        Assert.All(inputs, t => Assert.InRange(t.Length, 33, 64));
        using var stop = new CancellationTokenSource();
        var generation = engine.Submit(Runs.Greedy(engine.Tokenize("Once upon a time", true, false), 3000, ct: stop.Token));
        var tokens = 0;
        var reader = Task.Run(async () =>
        {
            await foreach (var ev in generation.Events.ReadAllAsync())
            {
                if (ev is TokenEvent)
                {
                    Interlocked.Increment(ref tokens);
                }
            }
        });
        while (Volatile.Read(ref tokens) < 5)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        var decodes = engine.EmbeddingDecodes;
        var before = Volatile.Read(ref tokens);
        var vectors = await engine.EmbedAsync(inputs, TestContext.Current.CancellationToken);
        var during = Volatile.Read(ref tokens) - before;
        await stop.CancelAsync();
        await reader;

        Assert.Equal(16, vectors.Length);
        Assert.Equal(16, engine.EmbeddingDecodes - decodes);
        Assert.True(during >= 8, $"only {during} tokens were generated during the 16 embedding decodes");
        TestContext.Current.TestOutputHelper?.WriteLine($"{during} tokens generated during 16 embedding decodes");
    }

    /// <summary>
    /// 16 requests of ~170 prompt tokens and 120 output tokens on a 1024-token context with 8 sequences: each fits
    /// alone, together they need about four times the cache. Every one completes in full; those preempted after they
    /// had streamed tokens were recomputed and continued with the same greedy tokens as an unpressured run (up to a
    /// genuine tie), and afterwards the ledger equals llama.cpp's own positions. Flash attention is off in both
    /// engines: on the CPU its online softmax rounds differently when a sequence's cells lie scattered among others'
    /// (as they do under pressure), and on this sharp random model that rounding alone flips near-greedy tokens.
    /// </summary>
    [Fact]
    public async Task Under_KV_pressure_requests_are_preempted_and_recomputed_and_every_one_completes_in_full()
    {
        const int Requests = 16, MaxTokens = 120, Context = 1024;
        int[][] prompts;
        RunResult[] reference;
        await using (var roomy = TestModels.Start(o => { o.ContextSize = 8192; o.MaxParallelSequences = 1; o.PrefixCacheSequences = 0; o.FlashAttention = FlashAttentionMode.Disabled; }))
        {
            prompts = [.. Enumerable.Range(0, Requests).Select(i => roomy.Tokenize(
                $"Request {i}: " + string.Join(' ', Enumerable.Range(0, 60).Select(w => $"w{(w * 7 + i * 13) % 97}")), true, false))];
            Assert.All(prompts, p => Assert.InRange(p.Length, 120, 260));
            reference = new RunResult[Requests];
            for (var i = 0; i < Requests; i++)
            {
                reference[i] = await Runs.Solo(roomy, Runs.GreedyWithLogprobs(prompts[i], MaxTokens));
            }
        }

        await using var engine = TestModels.Start(o => { o.ContextSize = Context; o.MaxParallelSequences = 8; o.PrefixCacheSequences = 8; o.FlashAttention = FlashAttentionMode.Disabled; });
        Assert.True(prompts.Sum(p => p.Length + MaxTokens) > 3 * Context, "the workload needs several times the cache");
        var handles = engine.SubmitAll([.. prompts.Select(p => Runs.GreedyWithLogprobs(p, MaxTokens))]);
        var results = (await Task.WhenAll(handles.Select(h => Runs.Collect(h)))).Select(r => r[0]).ToArray();

        for (var i = 0; i < Requests; i++)
        {
            Assert.True(results[i].Finished.Reason == FinishReason.Length, $"request {i}: {results[i].Finished.Reason} {string.Join(", ", results[i].Errors.Select(e => e.Code))}");
            Assert.Empty(results[i].Errors);
            Assert.Equal(MaxTokens, results[i].Tokens.Count);
            Runs.AssertGreedyClose(reference[i], results[i], $"request {i}");
        }

        Assert.True(results.Sum(r => r.Finished.Preemptions) == engine.Stats.Preemptions, "per-request preemptions add up to the engine's");
        Assert.True(results.Count(r => r.Finished.Preemptions > 0) >= 2, $"the workload must have preempted ({engine.Stats.Preemptions} preemptions)");
        TestContext.Current.TestOutputHelper?.WriteLine($"{Requests} requests, {engine.Stats.Preemptions} preemptions, all {MaxTokens} tokens each");
        var (sequences, used, unknown) = await engine.LedgerCheckAsync();
        Assert.Empty(unknown);
        Assert.All(sequences, s => Assert.True(s.Ledger == s.PosMax + 1, $"sequence {s.Seq}: ledger {s.Ledger}, llama.cpp up to position {s.PosMax}"));
        Assert.InRange(used, 1, Context);
        Assert.Equal(used, engine.Stats.KvCellsUsed);
        Assert.Equal(used, engine.Stats.KvCellsReclaimable); // nothing runs: every cell is a cached prefix

        var after = await Runs.Solo(engine, Runs.Greedy(prompts[0], 50));
        Assert.Equal((FinishReason.Length, 50), (after.Finished.Reason, after.Tokens.Count));
    }

    [Fact]
    public async Task A_full_wait_queue_refuses_with_EngineOverloadedException()
    {
        await using var engine = TestModels.Start(o => { o.MaxParallelSequences = 1; o.MaxQueuedRequests = 1; o.BatchSize = 64; o.MicroBatchSize = 64; });
        var prompt = engine.Tokenize("queue", true, false);
        using var cancel = new CancellationTokenSource();
        var first = engine.Submit(Runs.Greedy(prompt, 1000, ct: cancel.Token));
        var second = engine.Submit(Runs.Greedy(prompt, 4, ct: cancel.Token));

        Assert.Throws<EngineOverloadedException>(() => engine.Submit(Runs.Greedy(prompt, 4)));
        await cancel.CancelAsync();
        Assert.Equal(FinishReason.Cancelled, (await Runs.Collect(first))[0].Finished.Reason);
        Assert.Equal(FinishReason.Cancelled, (await Runs.Collect(second))[0].Finished.Reason);
        Assert.Equal(FinishReason.Length, (await Runs.Solo(engine, Runs.Greedy(prompt, 4))).Finished.Reason);
    }

    [Fact]
    public void A_file_that_is_not_a_model_fails_fast_naming_it()
    {
        var path = Path.Combine(Path.GetTempPath(), $"not-a-model-{Guid.NewGuid():N}.gguf");
        File.WriteAllText(path, "nope");
        try
        {
            var e = Assert.Throws<LlamaLoadException>(() => LlamaEngine.Start(TestModels.Options(o => o.ModelPath = path), NullLoggerFactory.Instance));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Requesting_CUDA_where_it_is_absent_fails_fast_naming_what_is_missing()
    {
        var e = Assert.Throws<LlamaLoadException>(() => LlamaEngine.Start(TestModels.Options(o => o.Backend = LlamaBackend.Cuda), NullLoggerFactory.Instance));
        Assert.Contains("libggml-cuda.so", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_options_are_refused_naming_the_setting()
    {
        var e = Assert.Throws<ArgumentException>(() => TestModels.Options(o => o.MicroBatchSize = 100_000).Validate());
        Assert.Contains("MicroBatchSize", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => TestModels.Options(o => o.ModelPath = "/nonexistent.gguf").Validate());
        Assert.Contains("/nonexistent.gguf", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_library_folder_is_named()
    {
        Assert.Equal("/some/dir", LlamaNative.ResolveDirectory("/some/dir"));
        Assert.EndsWith(Path.Combine(".native", "cpu"), LlamaNative.ResolveDirectory(null), StringComparison.Ordinal);
    }
}
