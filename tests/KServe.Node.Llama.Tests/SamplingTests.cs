using KServe.Node.Llama.Engine;
using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Tests;

/// <summary>The greedy fast path picks what llama.cpp's own greedy sampler picks, and is used only where nothing else is in the chain.</summary>
public sealed class SamplingTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private static GenerationRequest Request(SamplingParams s, string? grammar = null) => new([1, 2, 3], s, 4, [], Grammar: grammar);

    [Fact]
    public void Only_a_plain_greedy_request_takes_the_fast_path()
    {
        _ = fixture.Engine; // the fixture has loaded the library
        using var model = SafeLlamaModelHandle.Load(TestModels.Tiny, NativeMethods.llama_model_default_params());
        var sampling = new Sampling(new LlamaVocab(model));
        using (var greedy = sampling.BuildChain(Request(SamplingParams.Greedy), 0))
        {
            Assert.True(greedy.GreedyOnly);
        }

        SamplingParams[] notPlain =
        [
            SamplingParams.Greedy with { LogitBias = new Dictionary<int, float> { [5] = 2f } },
            SamplingParams.Greedy with { RepetitionPenalty = 1.1f },
            SamplingParams.Greedy with { PresencePenalty = 0.5f },
            new SamplingParams { Temperature = 0.7f, Seed = 1 },
        ];
        foreach (var s in notPlain)
        {
            using var chain = sampling.BuildChain(Request(s), 0);
            Assert.False(chain.GreedyOnly, s.ToString());
        }

        using var grammar = sampling.BuildChain(Request(SamplingParams.Greedy, "root ::= \"a\""), 0);
        Assert.False(grammar.GreedyOnly);
    }

    [Fact]
    public void The_fast_path_picks_llama_cpp_s_greedy_token_on_ties_and_banned_tokens()
    {
        _ = fixture.Engine;
        using var model = SafeLlamaModelHandle.Load(TestModels.Tiny, NativeMethods.llama_model_default_params());
        var vocab = new LlamaVocab(model);
        var sampling = new Sampling(vocab);
        using var fast = sampling.BuildChain(Request(SamplingParams.Greedy), 0);
        using var native = SafeLlamaSamplerHandle.CreateChain();
        native.Add(NativeMethods.llama_sampler_init_greedy(), "greedy");
        Assert.True(fast.GreedyOnly);
        Assert.False(native.GreedyOnly);

        var rng = new Random(42);
        var logits = new float[vocab.Count];
        for (var round = 0; round < 200; round++)
        {
            for (var i = 0; i < logits.Length; i++)
            {
                logits[i] = (float)Math.Round(rng.NextDouble() * 8, round % 3); // coarse rounding makes ties common
            }

            if (round % 4 == 0)
            {
                // min_tokens-style bans: the top tokens excluded.
                var max = logits.Max();
                for (var i = 0; i < logits.Length; i++)
                {
                    if (logits[i] == max)
                    {
                        logits[i] = float.NegativeInfinity;
                    }
                }
            }

            Assert.Equal(sampling.Sample(native, logits), sampling.Sample(fast, logits));
        }

        Array.Fill(logits, float.NegativeInfinity);
        Assert.Equal(-1, sampling.Sample(fast, logits));
        Assert.Equal(-1, sampling.Sample(native, logits));
    }
}
