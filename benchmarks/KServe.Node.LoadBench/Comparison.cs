using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LoadBench;

/// <summary>
/// Runs each workload against both servers, alternating server by server within every round (warm-up
/// excluded), and prints one JSON line per measured round and one summary line per workload with the
/// ratio ours / anchor.
/// </summary>
internal static class Comparison
{
    // A fixed pseudo-random word list: both servers get byte-identical prompts.
    private static readonly string[] Words =
        "the of and to in is was for on are with as by at from that this be or have an it not which but were all can one more has their there been if would when will into so no out up some what about time only other new".Split(' ');

    public static async Task<int> RunAsync(BenchOptions o)
    {
        // llama-server (cpp-httplib) closes idle keep-alive connections after 5 s; pooled connections are
        // retired sooner so that a round never starts on a connection the other side already closed.
        using var handler = new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(2), MaxConnectionsPerServer = 256 };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(10) };
        var runner = new LoadRunner(http, o.Model, o.MaxTokens);
        var workloads = new List<Workload>();
        foreach (var c in o.Concurrency)
        {
            workloads.Add(new Workload($"chat-c{c}", c, i => Text(o.PromptWords, seed: i + (c * 100_000))));
        }
        if (o.SharedPrefixWords > 0)
        {
            var prefix = Text(o.SharedPrefixWords, seed: 7);
            workloads.Add(new Workload($"shared-prefix-c{o.SharedPrefixConcurrency}", o.SharedPrefixConcurrency,
                i => prefix + "\nQuestion " + i + ": " + Text(16, seed: 900_000 + i)));
        }
        var servers = new[] { ("ours", o.Ours), ("anchor", o.Anchor) };
        var failed = 0;
        foreach (var w in workloads)
        {
            var perServer = servers.ToDictionary(s => s.Item1, _ => new List<RoundResult>());
            foreach (var (name, uri) in servers)
            {
                // Warm-up: not measured, on prompts no measured round uses.
                await runner.RunRoundAsync(uri, w with { Concurrency = Math.Min(w.Concurrency, o.Warmup) }, o.Warmup, -o.Warmup, CancellationToken.None).ConfigureAwait(false);
            }
            for (var round = 0; round < o.Rounds; round++)
            {
                // Alternate which server goes first so drift on the machine hits both equally.
                var order = round % 2 == 0 ? servers : servers.Reverse().ToArray();
                foreach (var (name, uri) in order)
                {
                    var r = await runner.RunRoundAsync(uri, w, o.RequestsPerRound, round * o.RequestsPerRound, CancellationToken.None).ConfigureAwait(false);
                    perServer[name].Add(r);
                    failed += r.TokenMismatches;
                    Console.WriteLine(Line(w.Name, name, round, r).ToJsonString());
                }
            }
            var ours = Merge(perServer["ours"]);
            var anchor = Merge(perServer["anchor"]);
            var summary = new JsonObject
            {
                ["kind"] = "summary",
                ["workload"] = w.Name,
                ["concurrency"] = w.Concurrency,
                ["ours"] = Stats(ours),
                ["anchor"] = Stats(anchor),
                ["ratio_output_tokens_per_s"] = Round(ours.OutputTokensPerSecond / anchor.OutputTokensPerSecond),
                ["ratio_ttft_p95"] = Round(Percentile(ours.Ttft, 95) / Percentile(anchor.Ttft, 95)),
                ["ratio_itl_p50"] = Round(Percentile(ours.Itl, 50) / Percentile(anchor.Itl, 50)),
                ["ratio_itl_p95"] = Round(Percentile(ours.Itl, 95) / Percentile(anchor.Itl, 95)),
            };
            Console.WriteLine(summary.ToJsonString());
        }
        if (failed > 0)
        {
            Console.Error.WriteLine($"loadbench: {failed} responses did not have exactly max_tokens output tokens");
            return 1;
        }
        return 0;
    }

    private static JsonObject Line(string workload, string server, int round, RoundResult r)
    {
        var o = Stats(r);
        o["kind"] = "round";
        o["workload"] = workload;
        o["server"] = server;
        o["round"] = round;
        return o;
    }

    private static JsonObject Stats(RoundResult r) => new()
    {
        ["requests"] = r.Requests,
        ["output_tokens"] = r.OutputTokens,
        ["output_tokens_per_s"] = Round(r.OutputTokensPerSecond),
        ["requests_per_s"] = Round(r.RequestsPerSecond),
        ["ttft_p50_ms"] = Round(Percentile(r.Ttft, 50) * 1000),
        ["ttft_p95_ms"] = Round(Percentile(r.Ttft, 95) * 1000),
        ["itl_p50_ms"] = Round(Percentile(r.Itl, 50) * 1000),
        ["itl_p95_ms"] = Round(Percentile(r.Itl, 95) * 1000),
        ["retries"] = r.Retries,
    };

    private static RoundResult Merge(List<RoundResult> rounds) => new(
        rounds.Sum(r => r.Requests), rounds.Sum(r => r.OutputTokens), rounds.Sum(r => r.WallSeconds),
        [.. rounds.SelectMany(r => r.Ttft)], [.. rounds.SelectMany(r => r.Itl)], rounds.Sum(r => r.TokenMismatches)) { Retries = rounds.Sum(r => r.Retries) };

    internal static double Percentile(double[] values, double p)
    {
        if (values.Length == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToArray();
        var rank = p / 100.0 * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = (int)Math.Ceiling(rank);
        return sorted[lo] + ((sorted[hi] - sorted[lo]) * (rank - lo));
    }

    private static double Round(double v) => Math.Round(v, 3);

    private static string Text(int words, int seed)
    {
        var rng = new Random(seed);
        return string.Join(' ', Enumerable.Range(0, words).Select(_ => Words[rng.Next(Words.Length)]));
    }
}
