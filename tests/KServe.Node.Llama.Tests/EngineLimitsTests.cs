using KServe.Node.Llama.Native;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.Llama.Tests;

/// <summary>Engines with special settings: small KV caches, tiny queues, bad configuration.</summary>
public sealed class EngineLimitsTests
{
    [Fact]
    public async Task When_the_KV_cache_is_exhausted_a_request_gets_an_error_and_the_engine_keeps_serving()
    {
        await using var engine = TestModels.Start(o => { o.ContextSize = 256; o.MaxParallelSequences = 4; o.PrefixCacheSequences = 0; });
        Assert.Equal(256, engine.Model.ContextSize);
        var prompts = new[] { "first long story", "second long story", "third long story" }
            .Select(p => engine.Tokenize(p, true, false)).ToArray();

        var handles = engine.SubmitAll(prompts.Select(p => Runs.Greedy(p, 200)).ToArray());
        var results = (await Task.WhenAll(handles.Select(h => Runs.Collect(h)))).Select(r => r[0]).ToArray();

        Assert.Contains(results, r => r.Finished.Reason == FinishReason.Length && r.Tokens.Count == 200);
        var failed = results.Where(r => r.Finished.Reason == FinishReason.Error).ToArray();
        Assert.NotEmpty(failed);
        Assert.All(failed, r => Assert.Equal("kv_cache_exhausted", Assert.Single(r.Errors).Code));
        Assert.True(engine.Stats.Preemptions >= 1);

        var after = await Runs.Solo(engine, Runs.Greedy(prompts[0], 50));
        Assert.Equal(FinishReason.Length, after.Finished.Reason);
        Assert.Equal(50, after.Tokens.Count);
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
