using KServe.Node.Gguf;
using KServe.Node.LlmServer.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>Generated tiny models (random weights, the real llama-spm vocabulary), made once per machine.</summary>
internal static class TestModels
{
    private static readonly Lazy<string> TinyPath = new(() => Generate("llmserver-tiny-spm-f32", new GeneratedModelSpec
    {
        Layers = 2, EmbeddingLength = 64, FeedForwardLength = 128, Heads = 4, HeadsKv = 2, ContextLength = 4096,
        WeightType = GeneratedWeightType.F32, Seed = 7,
    }));

    private static readonly Lazy<string> TinyToolsPath = new(() => Generate("llmserver-tiny-spm-f32-tools", new GeneratedModelSpec
    {
        Layers = 2, EmbeddingLength = 64, FeedForwardLength = 128, Heads = 4, HeadsKv = 2, ContextLength = 4096,
        WeightType = GeneratedWeightType.F32, Seed = 7, ChatTemplate = ToolTemplate,
    }));

    private static readonly Lazy<string> TinyThinkingPath = new(() => Generate("llmserver-tiny-spm-f32-think-fim", new GeneratedModelSpec
    {
        Layers = 2, EmbeddingLength = 64, FeedForwardLength = 128, Heads = 4, HeadsKv = 2, ContextLength = 4096,
        WeightType = GeneratedWeightType.F32, Seed = 7, ChatTemplate = ThinkingTemplate,
    }, ThinkingVocab()));

    public static string Tiny => TinyPath.Value;

    /// <summary>
    /// The tiny model as a reasoning model: <see cref="ThinkingTemplate"/> opens a think block in the prompt, and
    /// <c>&lt;think&gt;</c> and <c>&lt;/think&gt;</c> are single tokens (<see cref="ThinkId"/>, <see cref="EndThinkId"/>),
    /// as in DeepSeek R1's and Qwen3's vocabularies, so a logit bias can make the model close its reasoning. Its
    /// vocabulary also has a code model's fill-in-the-middle tokens (<see cref="FimPrefixId"/> and the two after it).
    /// </summary>
    public static string TinyThinking => TinyThinkingPath.Value;

    public const int ThinkId = 31998;
    public const int EndThinkId = 31999;
    public const int FimPrefixId = 31995;
    public const int FimSuffixId = 31996;
    public const int FimMiddleId = 31997;

    /// <summary>The special tokens of <see cref="TinyThinking"/>'s vocabulary, as Qwen2.5-Coder's spells its FIM tokens.</summary>
    private static readonly Dictionary<int, string> SpecialTokens = new()
    {
        [FimPrefixId] = "<|fim_prefix|>", [FimSuffixId] = "<|fim_suffix|>", [FimMiddleId] = "<|fim_middle|>",
        [ThinkId] = "<think>", [EndThinkId] = "</think>",
    };

    /// <summary>DeepSeek R1's shape: the assistant turn opens with &lt;think&gt; in the prompt.</summary>
    public const string ThinkingTemplate =
        "{%- for message in messages %}{{- '<|' + message.role + '|>' + message.content + '\\n' }}{%- endfor %}"
        + "{%- if add_generation_prompt %}{{- '<|assistant|><think>\\n' }}{%- endif %}";

    /// <summary>The llama-spm vocabulary with its last five tokens replaced by user-defined FIM and think tags.</summary>
    private static string ThinkingVocab()
    {
        var source = Path.Combine(RepoPaths.Root, ".native", "llama.cpp", "models", "ggml-vocab-llama-spm.gguf");
        var path = Path.Combine(Path.GetTempPath(), "kserve-node-test-models", "vocab-llama-spm-think-fim.gguf");
        if (File.Exists(path))
        {
            return path;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var vocab = GgufFile.Read(source);
        var w = new GgufWriter();
        foreach (var (key, value) in vocab.Metadata.Where(m => m.Key.StartsWith("tokenizer.", StringComparison.Ordinal)))
        {
            if (key == "tokenizer.ggml.tokens" && value is GgufArray { Values: string[] tokens })
            {
                var copy = (string[])tokens.Clone();
                foreach (var (id, text) in SpecialTokens)
                {
                    copy[id] = text;
                }
                w.AddValue(key, new GgufArray(GgufValueType.String, copy));
            }
            else if (key == "tokenizer.ggml.token_type" && value is GgufArray { Values: int[] types })
            {
                var copy = (int[])types.Clone();
                foreach (var id in SpecialTokens.Keys)
                {
                    copy[id] = 4; // USER_DEFINED: always parsed, always printed
                }
                w.AddValue(key, new GgufArray(GgufValueType.Int32, copy));
            }
            else
            {
                w.AddValue(key, value);
            }
        }
        w.AddValue("tokenizer.ggml.fim_pre_token_id", (uint)FimPrefixId);
        w.AddValue("tokenizer.ggml.fim_suf_token_id", (uint)FimSuffixId);
        w.AddValue("tokenizer.ggml.fim_mid_token_id", (uint)FimMiddleId);
        var tmp = path + "." + Environment.ProcessId + ".tmp";
        w.Write(tmp);
        File.Move(tmp, path, overwrite: true);
        return path;
    }

    /// <summary>The tiny model with <see cref="ToolTemplate"/> as its chat template.</summary>
    public static string TinyTools => TinyToolsPath.Value;

    /// <summary>
    /// A small ChatML chat template in the Hermes style for tools: signatures in a system block, calls as
    /// &lt;tool_call&gt; blocks (arguments rendered as objects), tool results as &lt;tool_response&gt; user turns.
    /// </summary>
    public const string ToolTemplate = """
        {%- if tools %}
        {{- '<|im_start|>system\n' }}
        {%- if messages[0].role == 'system' %}{{- messages[0].content + '\n\n' }}{%- endif %}
        {{- 'Functions you may call, one JSON signature a line:\n<tools>\n' }}
        {%- for tool in tools %}{{- tool | tojson }}{{- '\n' }}{%- endfor %}
        {{- '</tools>\nFor each call write <tool_call>\n{"name": <function name>, "arguments": <JSON object>}\n</tool_call><|im_end|>\n' }}
        {%- elif messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
        {%- endif %}
        {%- for message in messages %}
        {%- if message.role == 'system' %}
        {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant\n' }}
        {%- if message.content %}{{- message.content }}{%- endif %}
        {%- if message.tool_calls %}
        {%- for call in message.tool_calls %}
        {{- '<tool_call>\n{"name": "' + call.function.name + '", "arguments": ' + (call.function.arguments | tojson) + '}\n</tool_call>' }}
        {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
        {%- elif message.role == 'tool' %}
        {{- '<|im_start|>user\n<tool_response>\n' + message.content + '\n</tool_response><|im_end|>\n' }}
        {%- else %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
        {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
        """;

    private static string Generate(string name, GeneratedModelSpec spec, string? vocabPath = null)
    {
        var vocab = vocabPath ?? Path.Combine(RepoPaths.Root, ".native", "llama.cpp", "models", "ggml-vocab-llama-spm.gguf");
        if (!File.Exists(vocab))
        {
            throw new FileNotFoundException($"{vocab} is missing: run scripts/setup.sh", vocab);
        }
        var dir = Path.Combine(Path.GetTempPath(), "kserve-node-test-models");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name + ".gguf");
        if (!File.Exists(path))
        {
            var tmp = path + "." + Environment.ProcessId + ".tmp";
            TestModelGenerator.GenerateLlama(tmp, vocab, spec);
            File.Move(tmp, path, overwrite: true);
        }
        return path;
    }
}

/// <summary>A real llm-server (Kestrel on 127.0.0.1, ephemeral port) serving the tiny model.</summary>
public sealed class RunningServer : IAsyncDisposable
{
    public const string ModelName = "tiny";

    private RunningServer(WebApplication app, Uri baseAddress)
    {
        App = app;
        BaseAddress = baseAddress;
        Http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public WebApplication App { get; }
    public Uri BaseAddress { get; }
    public HttpClient Http { get; }
    internal ModelService Model => App.Services.GetRequiredService<ModelService>();

    /// <summary>Starts a server; <paramref name="openGate"/> false holds model loading until <see cref="OpenGate"/>.</summary>
    public static async Task<RunningServer> StartAsync(IEnumerable<string>? extraArgs = null, bool openGate = true, bool waitReady = true, string? model = null)
    {
        string[] args =
        [
            "--model", model ?? TestModels.Tiny, "--host", "127.0.0.1", "--port", "0", "--served-model-name", ModelName,
            "--native-dir", Path.Combine(RepoPaths.Root, ".native", "cpu"), "--ctx-size", "2048", "--parallel", "4",
            "--prefix-cache-sequences", "4", "--threads", "1", "--batch-size", "512", "--ubatch-size", "512",
            .. extraArgs ?? [],
        ];
        var app = LlmServerApp.Create(args, b => b.Logging.SetMinimumLevel(LogLevel.Warning), openGate);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var server = new RunningServer(app, new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/"));
        if (waitReady)
        {
            await server.Model.Loaded.WaitAsync(TimeSpan.FromSeconds(60));
        }
        return server;
    }

    /// <summary>Token ids of a text, from the server's /tokenize.</summary>
    public async Task<int[]> TokenizeAsync(string text)
    {
        using var r = await Http.PostAsync("tokenize", new StringContent(System.Text.Json.JsonSerializer.Serialize(new { content = text })));
        r.EnsureSuccessStatusCode();
        using var doc = System.Text.Json.JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
    }

    /// <summary>The tokens of "{" and "}" as they appear after other text (no leading-space marker).</summary>
    public async Task<int[]> BraceTokensAsync() => [(await TokenizeAsync("a{"))[^1], (await TokenizeAsync("a}"))[^1]];

    public void OpenGate() => App.Services.GetRequiredService<ModelLoadGate>().Open();

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>One server shared by the tests of a class (loading is the slow part).</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public RunningServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await RunningServer.StartAsync();

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}

/// <summary>One server on the tiny model whose chat template renders tools (Hermes style).</summary>
public sealed class ToolServerFixture : IAsyncLifetime
{
    public RunningServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await RunningServer.StartAsync(model: TestModels.TinyTools);

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}
