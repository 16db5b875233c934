using Xunit.Sdk;

namespace KServe.Node.Llama.Tests;

/// <summary>The comparison the engine tests use for greedy runs of differing batch shapes must accept only ties.</summary>
public sealed class GreedyCloseTests
{
    private static RunResult Run(params (int Token, (int Id, float Lp)[] Top)[] steps)
    {
        var events = steps
            .Select(s => new TokenEvent(0, s.Token, "t", s.Top[0].Lp, s.Top.Select(t => new TokenLogprob(t.Id, "t", t.Lp)).ToList()))
            .ToList();
        var finished = new FinishedEvent(0, FinishReason.Length, 3, 0, steps.Length, 3, null);
        return new RunResult(steps.Select(s => s.Token).ToList(), "", finished, [], events);
    }

    [Fact]
    public void Identical_runs_pass()
    {
        var a = Run((1, [(1, -0.1f), (2, -3f)]), (5, [(5, -0.2f), (6, -2f)]));
        Runs.AssertGreedyClose(a, a, "same");
    }

    [Fact]
    public void A_divergence_at_a_tie_passes_and_ends_the_comparison()
    {
        var solo = Run((1, [(1, -0.1f), (2, -3f)]), (5, [(5, -0.690f), (6, -0.696f)]), (7, [(7, -0.1f), (8, -4f)]));
        var batch = Run((1, [(1, -0.1f), (2, -3f)]), (6, [(6, -0.689f), (5, -0.697f)]), (9, [(9, -0.1f), (7, -4f)]));
        Runs.AssertGreedyClose(solo, batch, "tie");
    }

    [Fact]
    public void A_divergence_that_is_not_a_tie_fails()
    {
        var solo = Run((1, [(1, -0.1f), (2, -3f)]), (5, [(5, -0.2f), (6, -1.9f)]));
        var batch = Run((1, [(1, -0.1f), (2, -3f)]), (6, [(6, -0.2f), (5, -1.9f)]));
        var e = Assert.Throws<TrueException>(() => Runs.AssertGreedyClose(solo, batch, "far"));
        Assert.Contains("not a tie", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_divergence_to_a_token_outside_the_top_k_fails()
    {
        var solo = Run((1, [(1, -0.1f), (2, -3f)]));
        var batch = Run((4, [(4, -0.1f), (1, -0.12f)]));
        var e = Assert.Throws<TrueException>(() => Runs.AssertGreedyClose(solo, batch, "outside"));
        Assert.Contains("not in its top", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Runs_of_different_lengths_fail()
    {
        var a = Run((1, [(1, -0.1f), (2, -3f)]), (5, [(5, -0.2f), (6, -2f)]));
        var b = Run((1, [(1, -0.1f), (2, -3f)]));
        Assert.ThrowsAny<XunitException>(() => Runs.AssertGreedyClose(a, b, "length"));
    }
}
