using System.Globalization;
using KServe.Node.Gguf;

namespace KServe.Node.LoadBench;

/// <summary><c>gen-model --out PATH --vocab VOCAB.gguf [--preset demo|benchmark] [--layers N --embd N --ff N --heads N --type f16|f32]</c>.</summary>
internal static class GenModelCommand
{
    public static int Run(string[] args)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 1; i + 1 < args.Length; i += 2)
        {
            map[args[i]] = args[i + 1];
        }
        if (!map.TryGetValue("--out", out var output) || !map.TryGetValue("--vocab", out var vocab))
        {
            Console.Error.WriteLine("usage: gen-model --out PATH --vocab VOCAB.gguf [--layers N] [--embd N] [--ff N] [--heads N] [--type f16|f32] [--preset demo|benchmark]");
            return 2;
        }
        int Int(string k, int d) => map.TryGetValue(k, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : d;
        var preset = map.GetValueOrDefault("--preset", "benchmark") == "demo" ? DemoModel.Demo : DemoModel.Benchmark;
        var heads = Int("--heads", preset.Heads);
        var spec = preset with
        {
            Layers = Int("--layers", preset.Layers),
            EmbeddingLength = Int("--embd", preset.EmbeddingLength),
            FeedForwardLength = Int("--ff", preset.FeedForwardLength),
            Heads = heads,
            HeadsKv = heads,
            WeightType = map.GetValueOrDefault("--type", "f16") == "f32" ? GeneratedWeightType.F32 : GeneratedWeightType.F16,
        };
        var facts = TestModelGenerator.GenerateLlama(output, vocab, spec);
        Console.WriteLine($"{{\"kind\":\"model\",\"path\":\"{output}\",\"parameters\":{facts.ParameterCount},\"bytes\":{new FileInfo(output).Length}}}");
        return 0;
    }
}
