using System.Globalization;

namespace KServe.Node.LlmServer.Hosting;

/// <summary>
/// The llm-server command line, mapped onto configuration keys (<c>LlmServer:*</c> for the server,
/// <c>Engine:*</c> for the engine) so that options classes bind and validate them.
/// </summary>
public static class ServerCommandLine
{
    private sealed record Flag(string Key, bool Repeatable = false, bool IsSwitch = false, string Help = "");

    private static readonly Dictionary<string, Flag> Flags = new(StringComparer.Ordinal)
    {
        ["--model"] = new("LlmServer:Model", Help: "GGUF file, or a folder holding one"),
        ["-m"] = new("LlmServer:Model"),
        ["--model-file"] = new("LlmServer:ModelFile", Help: "the GGUF to serve when --model is a folder with several"),
        ["--host"] = new("LlmServer:Host", Help: "address to listen on (default 0.0.0.0)"),
        ["--port"] = new("LlmServer:Port", Help: "port to listen on (default 8080)"),
        ["--served-model-name"] = new("LlmServer:ServedModelName", Help: "model name clients use (default: the file name)"),
        ["--chat-template-file"] = new("LlmServer:ChatTemplateFile", Help: "Jinja chat template to use instead of the GGUF's"),
        ["--tool-call-parser"] = new("LlmServer:ToolCallParser", Help: "tool call format: auto (from the chat template), hermes, llama3_json or mistral"),
        ["--api-key"] = new("LlmServer:ApiKeys", Repeatable: true, Help: "accepted Bearer key (repeatable)"),
        ["--cors-origin"] = new("LlmServer:CorsOrigins", Repeatable: true, Help: "allowed CORS origin, or * (repeatable)"),
        ["--max-request-bytes"] = new("LlmServer:MaxRequestBytes", Help: "largest accepted request body"),
        ["--sse-ping-seconds"] = new("LlmServer:SsePingSeconds", Help: "keep-alive comment interval of streams"),
        ["--shutdown-timeout"] = new("LlmServer:ShutdownTimeoutSeconds", Help: "seconds in-flight requests get on shutdown"),
        ["--default-max-tokens"] = new("LlmServer:DefaultMaxTokens", Help: "max_tokens when a request gives none"),
        ["--ctx-size"] = new("Engine:ContextSize", Help: "KV cache size in tokens shared by all sequences"),
        ["-c"] = new("Engine:ContextSize"),
        ["--parallel"] = new("Engine:MaxParallelSequences", Help: "sequences decoded at once"),
        ["-np"] = new("Engine:MaxParallelSequences"),
        ["--prefix-cache-sequences"] = new("Engine:PrefixCacheSequences", Help: "finished prompts kept as a prefix cache"),
        ["--max-queue"] = new("Engine:MaxQueuedRequests", Help: "requests allowed to wait; beyond that 429"),
        ["--threads"] = new("Engine:Threads", Help: "decode threads"),
        ["-t"] = new("Engine:Threads"),
        ["--threads-batch"] = new("Engine:BatchThreads", Help: "prompt threads"),
        ["--batch-size"] = new("Engine:BatchSize", Help: "logical batch size"),
        ["--ubatch-size"] = new("Engine:MicroBatchSize", Help: "physical batch size"),
        ["--gpu-layers"] = new("Engine:GpuLayers", Help: "layers offloaded to the GPU (-1 = all)"),
        ["-ngl"] = new("Engine:GpuLayers"),
        ["--n-gpu-layers"] = new("Engine:GpuLayers"),
        ["--backend"] = new("Engine:Backend", Help: "cpu or cuda"),
        ["--flash-attn"] = new("Engine:FlashAttention", Help: "auto, enabled or disabled"),
        ["--kv-cache-type"] = new("Engine:KvCacheType", Help: "f16 or q8_0"),
        ["--native-dir"] = new("Engine:NativeLibraryDirectory", Help: "folder of the llama.cpp libraries"),
        ["--no-embeddings"] = new("Engine:EnableEmbeddings", IsSwitch: true, Help: "disable /v1/embeddings"),
    };

    /// <summary>Parses arguments into configuration pairs; throws <see cref="FormatException"/> naming the bad argument.</summary>
    public static Dictionary<string, string?> Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var result = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string name = arg;
            string? value = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
            }
            if (!Flags.TryGetValue(name, out var flag))
            {
                throw new FormatException($"unknown argument '{arg}' (see --help)");
            }
            if (flag.IsSwitch)
            {
                result[flag.Key] = "false";
                continue;
            }
            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    throw new FormatException($"{name} needs a value");
                }
                value = args[++i];
            }
            if (flag.Repeatable)
            {
                var n = counts.GetValueOrDefault(flag.Key);
                counts[flag.Key] = n + 1;
                result[$"{flag.Key}:{n.ToString(CultureInfo.InvariantCulture)}"] = value;
            }
            else
            {
                result[flag.Key] = value;
            }
        }
        return result;
    }

    public static string Usage()
    {
        var lines = new List<string> { "usage: llm-server --model <file or folder> [options]", "" };
        foreach (var (name, flag) in Flags.Where(f => f.Value.Help.Length > 0))
        {
            lines.Add($"  {name,-26} {flag.Help}");
        }
        return string.Join('\n', lines);
    }
}
