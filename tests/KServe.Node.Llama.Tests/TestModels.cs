using KServe.Node.Gguf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.Llama.Tests;

internal static class TestModels
{
    private static readonly Lazy<string> TinyPath = new(() => Generate("tiny-spm-f32-v3", new GeneratedModelSpec
    {
        Layers = 2, EmbeddingLength = 64, FeedForwardLength = 128, Heads = 4, HeadsKv = 2, ContextLength = 4096,
        WeightType = GeneratedWeightType.F32, Seed = 42,
        // Sharper than the default: batched and solo runs take different kernel paths (and cached prefixes
        // were computed in other batch shapes), so near-ties in the logits must be rarer than one per ~200 tokens.
        LogitScale = 40f,
    }));

    public static string RepoRoot { get; } = FindRoot();

    /// <summary>A 2-layer, 64-wide random F32 llama model with the real llama-spm vocabulary (F32: no near-ties in greedy decoding).</summary>
    public static string Tiny => TinyPath.Value;

    public static string NativeDir => Path.Combine(RepoRoot, ".native", "cpu");

    public static EngineOptions Options(Action<EngineOptions>? configure = null)
    {
        var o = new EngineOptions
        {
            ModelPath = Tiny,
            NativeLibraryDirectory = NativeDir,
            ContextSize = 4096,
            MaxParallelSequences = 8,
            PrefixCacheSequences = 8,
            Threads = 1,
            BatchSize = 512,
            MicroBatchSize = 512,
        };
        configure?.Invoke(o);
        return o;
    }

    public static LlamaEngine Start(Action<EngineOptions>? configure = null) => LlamaEngine.Start(Options(configure), NullLoggerFactory.Instance);

    private static string Generate(string name, GeneratedModelSpec spec)
    {
        var vocab = Path.Combine(RepoRoot, ".native", "llama.cpp", "models", "ggml-vocab-llama-spm.gguf");
        if (!File.Exists(vocab))
        {
            throw new FileNotFoundException($"{vocab} is missing: run scripts/setup.sh", vocab);
        }

        var dir = Path.Combine(Path.GetTempPath(), "kserve-node-test-models");
        var path = Path.Combine(dir, name + ".gguf");
        if (!File.Exists(path))
        {
            TestModelGenerator.GenerateLlama(path, vocab, spec);
        }

        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KServe.Node.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("KServe.Node.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>One engine shared by the tests of a class (loading is the slow part).</summary>
public sealed class EngineFixture : IAsyncLifetime
{
    public LlamaEngine Engine { get; private set; } = null!;

    public ValueTask InitializeAsync()
    {
        Engine = TestModels.Start();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => Engine.DisposeAsync();
}

internal sealed record RunResult(List<int> Tokens, string Text, FinishedEvent Finished, List<ErrorEvent> Errors, List<TokenEvent> Events);

internal static class Runs
{
    public static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    public static GenerationRequest Greedy(int[] prompt, int maxTokens, IReadOnlyList<string>? stop = null, CancellationToken ct = default) =>
        new(prompt, SamplingParams.Greedy, maxTokens, stop ?? [], IgnoreEos: true, CancellationToken: ct);

    /// <summary>A greedy request that also reports each step's top logprobs, for <see cref="AssertGreedyClose"/>.</summary>
    public static GenerationRequest GreedyWithLogprobs(int[] prompt, int maxTokens, CancellationToken ct = default) =>
        Greedy(prompt, maxTokens, ct: ct) with { TopLogprobs = CloseTopK };

    private const int CloseTopK = 5;

    /// <summary>Largest logprob gap (nats) between two tokens that still counts as a tie.</summary>
    private const float TieTolerance = 0.05f;

    /// <summary>
    /// Asserts that two greedy runs of the same prompt computed in different batch shapes (alone or batched, cold or
    /// from a cached prefix) agree. llama.cpp's CPU kernels are not batch-invariant: a different batch shape sums in
    /// another order, so the logits differ in the last bits. The runs must produce the same tokens until they end, or
    /// until a step where both runs' top two tokens were tied within <see cref="TieTolerance"/> nats (the rounding can
    /// legitimately flip such a tie, and after it the continuations differ). Any other divergence fails; this is the
    /// check vLLM's tests use to compare runs of differing shapes (check_logprobs_close), made stricter by
    /// requiring an actual tie rather than mere top-k membership.
    /// </summary>
    public static void AssertGreedyClose(RunResult expected, RunResult actual, string label)
    {
        Assert.Equal(expected.Tokens.Count, actual.Tokens.Count);
        var e = expected.Events.Where(t => t.TokenId >= 0).ToList();
        var a = actual.Events.Where(t => t.TokenId >= 0).ToList();
        Assert.Equal(expected.Tokens.Count, e.Count);
        Assert.Equal(actual.Tokens.Count, a.Count);
        for (var i = 0; i < e.Count; i++)
        {
            if (e[i].TokenId == a[i].TokenId)
            {
                continue;
            }

            AssertTie(e[i], a[i].TokenId, $"{label}: step {i}, expected run");
            AssertTie(a[i], e[i].TokenId, $"{label}: step {i}, actual run");
            return;
        }
    }

    private static void AssertTie(TokenEvent chosen, int other, string where)
    {
        Assert.True(chosen.TopLogprobs is { Count: > 0 }, $"{where}: no top logprobs (use {nameof(GreedyWithLogprobs)})");
        var top = chosen.TopLogprobs!;
        Assert.Equal(chosen.TokenId, top[0].TokenId);
        var alt = top.FirstOrDefault(t => t.TokenId == other);
        Assert.True(alt != null, $"{where}: chose {chosen.TokenId} ({top[0].Logprob:F4}); the other run's token {other} is not in its top {top.Count}");
        var gap = top[0].Logprob - alt!.Logprob;
        Assert.True(gap <= TieTolerance, $"{where}: the runs diverged where token {chosen.TokenId} led token {other} by {gap:F4} nats, not a tie");
    }

    /// <summary>Reads a handle to the end; returns one result per choice.</summary>
    public static async Task<RunResult[]> Collect(GenerationHandle handle, int choices = 1)
    {
        var tokens = Enumerable.Range(0, choices).Select(_ => new List<int>()).ToArray();
        var texts = Enumerable.Range(0, choices).Select(_ => new System.Text.StringBuilder()).ToArray();
        var events = Enumerable.Range(0, choices).Select(_ => new List<TokenEvent>()).ToArray();
        var errors = Enumerable.Range(0, choices).Select(_ => new List<ErrorEvent>()).ToArray();
        var finished = new FinishedEvent?[choices];
        using var cts = new CancellationTokenSource(Timeout);
        await foreach (var e in handle.Events.ReadAllAsync(cts.Token))
        {
            switch (e)
            {
                case TokenEvent t:
                    if (t.TokenId >= 0)
                    {
                        tokens[t.Choice].Add(t.TokenId);
                    }

                    texts[t.Choice].Append(t.Text);
                    events[t.Choice].Add(t);
                    break;
                case ErrorEvent err:
                    errors[err.Choice].Add(err);
                    break;
                case FinishedEvent f:
                    Assert.Null(finished[f.Choice]);
                    finished[f.Choice] = f;
                    break;
            }
        }

        return Enumerable.Range(0, choices)
            .Select(i => new RunResult(tokens[i], texts[i].ToString(), finished[i] ?? throw new InvalidOperationException($"choice {i} never finished"), errors[i], events[i]))
            .ToArray();
    }

    public static async Task<RunResult> Solo(LlamaEngine engine, GenerationRequest request) => (await Collect(engine.Submit(request)))[0];
}
