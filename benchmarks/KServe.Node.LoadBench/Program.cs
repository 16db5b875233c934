using System.Globalization;
using KServe.Node.LoadBench;

// Usage:
//   compare --ours URL --anchor URL --model NAME [--concurrency 1,8,32] [--shared-prefix-tokens 500]
//           [--requests-per-round N] [--rounds R] [--max-tokens T] [--prompt-words W] [--warmup N]
// Prints one JSON line per (workload, server, round) and one summary line per workload with ratios.
if (args.Length > 0 && args[0] == "gen-model")
{
    return GenModelCommand.Run(args);
}
var opts = BenchOptions.Parse(args);
if (opts is null)
{
    Console.Error.WriteLine("usage: compare --ours URL --anchor URL --model NAME [--concurrency 1,8,32] [--shared-prefix-words 500] " +
                            "[--requests-per-round N] [--rounds R] [--max-tokens T] [--prompt-words W] [--warmup N]");
    return 2;
}
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
return await Comparison.RunAsync(opts).ConfigureAwait(false);
