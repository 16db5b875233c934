using System.Globalization;

namespace KServe.Node.LoadBench;

internal sealed record BenchOptions(
    Uri Ours,
    Uri Anchor,
    string Model,
    IReadOnlyList<int> Concurrency,
    int SharedPrefixWords,
    int SharedPrefixConcurrency,
    int RequestsPerRound,
    int Rounds,
    int MaxTokens,
    int PromptWords,
    int Warmup)
{
    public static BenchOptions? Parse(string[] args)
    {
        if (args.Length == 0 || args[0] != "compare")
        {
            return null;
        }
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 1; i + 1 < args.Length; i += 2)
        {
            map[args[i]] = args[i + 1];
        }
        if (!map.TryGetValue("--ours", out var ours) || !map.TryGetValue("--anchor", out var anchor))
        {
            return null;
        }
        int Int(string k, int d) => map.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : d;
        var conc = map.TryGetValue("--concurrency", out var c)
            ? c.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray()
            : [1, 8, 32];
        return new BenchOptions(new Uri(ours), new Uri(anchor), map.GetValueOrDefault("--model", "bench"), conc,
            Int("--shared-prefix-words", 500), Int("--shared-prefix-concurrency", 8), Int("--requests-per-round", 32),
            Int("--rounds", 3), Int("--max-tokens", 64), Int("--prompt-words", 48), Int("--warmup", 4));
    }
}
