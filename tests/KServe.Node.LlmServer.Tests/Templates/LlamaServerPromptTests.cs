using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KServe.Node.LlmServer.Templates;

namespace KServe.Node.LlmServer.Tests.Templates;

/// <summary>
/// Our prompts against <c>llama-server --jinja</c> of the pinned llama.cpp source, for every bundled chat template.
/// The expected prompts are fixtures written by <c>scripts/render-template-fixtures.sh</c> (rerun it when the
/// llama.cpp source or the cases change), so this test needs no llama-server build.
/// </summary>
public sealed class LlamaServerPromptTests(ITestOutputHelper output)
{
    /// <summary>
    /// Templates whose prompt differs from llama-server's on purpose: llama.cpp rewrites the conversation or the
    /// output for them, and we render what transformers' apply_chat_template renders. Each entry says what llama-server does differently.
    /// </summary>
    internal static readonly Dictionary<string, string> DeliberateDifferences = new(StringComparer.Ordinal)
    {
        ["deepseek-ai-DeepSeek-V4"] = "llama-server keeps an empty <think></think> in earlier assistant turns; the template drops it (drop_thinking defaults to true)",
        ["deepseek-ai-DeepSeek-V4-Flash-0731"] = "llama-server keeps an empty <think></think> in earlier assistant turns; the template drops it (drop_thinking defaults to true)",
        ["fireworks-ai-llama-3-firefunction-v2"] = "the template needs a 'functions' variable: transformers and we refuse, llama-server renders it",
    };

    /// <summary>
    /// Templates our renderer refuses (or renders differently) where transformers renders what llama-server does:
    /// gaps in our Jinja interpreter, not choices. Listed so that the set can only shrink.
    /// </summary>
    internal static readonly Dictionary<string, string> KnownGaps = new(StringComparer.Ordinal)
    {
    };

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }

    internal static JsonObject Fixtures() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Templates", "llama-server-prompts.json")))!.AsObject();

    /// <summary>Our prompt for a fixture case, with llama-server's one output rule: a leading BOS the vocabulary adds itself is not part of the text.</summary>
    internal static string Ours(string templateName, JsonObject request, JsonObject fixtures, out string? error)
    {
        error = null;
        var bos = (string)fixtures["bos_token"]!;
        var time = new FixedTime(DateTimeOffset.Parse((string)fixtures["rendered_on"]!, System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            var prompt = new ChatPrompt(JinjaTemplate.Parse(File.ReadAllText(Path.Combine(RepoPaths.Templates, templateName + ".jinja"))));
            var input = new ChatPromptInput((JsonArray)request["messages"]!.DeepClone(), request["tools"]?.DeepClone() as JsonArray, true, false,
                bos, (string)fixtures["eos_token"]!, request["chat_template_kwargs"]?.DeepClone() as JsonObject);
            var text = prompt.Render(input, time);
            return text.StartsWith(bos, StringComparison.Ordinal) ? text[bos.Length..] : text;
        }
        catch (JinjaException e)
        {
            error = e.Message;
            return "";
        }
    }

    [Fact]
    public async Task Every_bundled_template_gives_llama_server_s_prompt_or_what_transformers_renders()
    {
        var fixtures = Fixtures();
        var templates = fixtures["templates"]!.AsObject();
        var cases = fixtures["cases"]!.AsArray();
        var bundled = Directory.GetFiles(RepoPaths.Templates, "*.jinja").Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(bundled, templates.Select(t => t.Key).Order(StringComparer.Ordinal).ToList());

        var identical = 0;
        var accepted = 0;
        var differing = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var failures = new List<string>();
        var report = new StringBuilder();
        foreach (var (name, results) in templates)
        {
            var rendered = results!.AsArray();
            if (rendered.Any(r => !(bool)r!["ok"]!))
            {
                report.AppendLine($"refused by llama-server: {name}");
                continue;
            }
            accepted++;
            var differs = new List<string>();
            for (var i = 0; i < cases.Count; i++)
            {
                var expected = (string)rendered[i]!["prompt"]!;
                var ours = Ours(name!, cases[i]!["request"]!.AsObject(), fixtures, out var error);
                if (error is not null || ours != expected)
                {
                    var at = FirstDifference(expected, ours);
                    differs.Add($"{cases[i]!["name"]}: at {at} expected {Show(expected, at)} got {(error is null ? Show(ours, at) : "error: " + error)}");
                }
            }
            if (differs.Count == 0)
            {
                identical++;
            }
            else
            {
                differing[name!] = differs;
            }
            report.AppendLine($"{(differs.Count == 0 ? "identical" : "DIFFERS  ")} {name}");
        }

        // Each difference: ours must equal the transformers stand-in (a deliberate difference), or be a listed gap.
        var standIn = await StandInAsync(differing.Keys, cases, fixtures);
        var sameAsTransformers = 0;
        foreach (var (name, differs) in differing)
        {
            var equal = true;
            for (var i = 0; i < cases.Count; i++)
            {
                var reference = standIn[name][i]!;
                var ours = Ours(name, cases[i]!["request"]!.AsObject(), fixtures, out var error);
                var same = (bool)reference["ok"]! ? error is null && ours == (string)reference["text"]! : error is not null;
                equal &= same;
                if (!same)
                {
                    report.AppendLine($"  {name} {cases[i]!["name"]}: transformers stand-in {((bool)reference["ok"]! ? "renders" : "refuses: " + reference["error"])}; ours {(error is null ? "renders" : "refuses: " + error)}");
                }
            }
            if (equal)
            {
                sameAsTransformers++;
                if (!DeliberateDifferences.ContainsKey(name))
                {
                    failures.Add($"{name} differs from llama-server but equals transformers: list it in DeliberateDifferences (and the README) with what llama-server does. " + string.Join("; ", differs));
                }
            }
            else if (!KnownGaps.ContainsKey(name))
            {
                failures.AddRange(differs.Select(d => $"{name} {d}"));
            }
        }
        foreach (var stale in DeliberateDifferences.Keys.Concat(KnownGaps.Keys).Where(k => !differing.ContainsKey(k)))
        {
            failures.Add($"{stale} is listed but renders like llama-server now: remove it from the list");
        }
        foreach (var wrong in KnownGaps.Keys.Where(k => differing.ContainsKey(k) && DeliberateDifferences.ContainsKey(k)))
        {
            failures.Add($"{wrong} is listed twice");
        }
        output.WriteLine($"llama-server prompts: {identical} of {accepted} accepted templates identical ({templates.Count} bundled); "
            + $"of the {differing.Count} that differ, {sameAsTransformers} equal the transformers stand-in (deliberate), {differing.Count - sameAsTransformers} are known renderer gaps");
        output.WriteLine(report.ToString());
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>The templates rendered by Python's jinja2 set up as transformers sets it up (Templates/transformers-stand-in.py).</summary>
    private static async Task<Dictionary<string, JsonArray>> StandInAsync(IEnumerable<string> names, JsonArray cases, JsonObject fixtures)
    {
        var templates = new JsonObject();
        foreach (var n in names)
        {
            templates[n] = File.ReadAllText(Path.Combine(RepoPaths.Templates, n + ".jinja"));
        }
        var standInCases = new JsonArray(cases.Select(c =>
        {
            var r = c!["request"]!.AsObject();
            return (JsonNode)new JsonObject
            {
                ["messages"] = r["messages"]!.DeepClone(),
                ["tools"] = r["tools"]?.DeepClone(),
                ["add_generation_prompt"] = true,
                ["bos_token"] = fixtures["bos_token"]!.DeepClone(),
                ["eos_token"] = fixtures["eos_token"]!.DeepClone(),
                ["kwargs"] = r["chat_template_kwargs"]?.DeepClone(),
                ["now"] = fixtures["rendered_on"]!.DeepClone(),
            };
        }).ToArray());
        var script = Path.Combine(AppContext.BaseDirectory, "Templates", "transformers-stand-in.py");
        var json = await RepoPaths.RunAsync(RepoPaths.DebianPython, script, new JsonObject { ["templates"] = templates, ["cases"] = standInCases }.ToJsonString(),
            TestContext.Current.CancellationToken);
        var bos = (string)fixtures["bos_token"]!;
        var result = new Dictionary<string, JsonArray>(StringComparer.Ordinal);
        foreach (var (name, rendered) in JsonNode.Parse(json)!.AsObject())
        {
            // Compared with Ours(), which drops the leading BOS as llama-server does.
            foreach (var r in rendered!.AsArray())
            {
                if ((bool)r!["ok"]! && ((string)r["text"]!).StartsWith(bos, StringComparison.Ordinal))
                {
                    r["text"] = ((string)r["text"]!)[bos.Length..];
                }
            }
            result[name] = rendered.AsArray();
        }
        return result;
    }

    private static int FirstDifference(string a, string b)
    {
        var i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i])
        {
            i++;
        }
        return i;
    }

    /// <summary>The text around the first difference.</summary>
    private static string Show(string s, int at)
    {
        var from = Math.Max(0, at - 60);
        return JsonSerializer.Serialize((from > 0 ? "…" : "") + s[from..Math.Min(s.Length, at + 120)]);
    }
}
