using KServe.Node.Hosting.Cli;
using KServe.Node.Llama;

namespace KServe.Node.LlmServer.Hosting;

/// <summary>
/// The llm-server command line: <see cref="LlmServerOptions"/> (section <c>LlmServer</c>) and the engine's
/// <see cref="EngineOptions"/> (section <c>Engine</c>), with llama-server's and vLLM's spellings as aliases.
/// </summary>
public static class ServerCommandLine
{
    public static CliApp App { get; } = new CliApp("llm-server", "LLM_SERVER").Add(
        new CliCommand(null, "Serves a GGUF model through an OpenAI-compatible API (and KServe's health routes) on llama.cpp.")
            .Options<LlmServerOptions>(LlmServerOptions.Section, f => f
                .Alias(nameof(LlmServerOptions.Model), "-m")
                .ValueName(nameof(LlmServerOptions.Model), "PATH")
                .ValueName(nameof(LlmServerOptions.ModelFile), "NAME")
                .ValueName(nameof(LlmServerOptions.ChatTemplateFile), "FILE")
                .ValueName(nameof(LlmServerOptions.Host), "ADDRESS")
                .ValueName(nameof(LlmServerOptions.ServedModelName), "NAME")
                .Alias(nameof(LlmServerOptions.ApiKeys), "--api-key")
                .ValueName(nameof(LlmServerOptions.ApiKeys), "KEY")
                .ValueName(nameof(LlmServerOptions.ApiKeyFile), "FILE")
                .Alias(nameof(LlmServerOptions.CorsOrigins), "--cors-origin")
                .ValueName(nameof(LlmServerOptions.CorsOrigins), "ORIGIN")
                .Alias(nameof(LlmServerOptions.ShutdownTimeoutSeconds), "--shutdown-timeout")
                .ValueName(nameof(LlmServerOptions.ToolCallParser), "PARSER")
                .ValueName(nameof(LlmServerOptions.ReasoningParser), "PARSER"))
            .Options<EngineOptions>("Engine", f => f
                .Without(nameof(EngineOptions.ModelPath), nameof(EngineOptions.ModelName))
                .Alias(nameof(EngineOptions.ContextSize), "--ctx-size", "-c")
                .Alias(nameof(EngineOptions.MaxParallelSequences), "--parallel", "-np")
                .Alias(nameof(EngineOptions.MaxQueuedRequests), "--max-queue")
                .Alias(nameof(EngineOptions.QueueTimeoutSeconds), "--queue-timeout")
                .Alias(nameof(EngineOptions.Threads), "-t")
                .Alias(nameof(EngineOptions.BatchThreads), "--threads-batch", "-tb")
                .Alias(nameof(EngineOptions.BatchSize), "-b")
                .Alias(nameof(EngineOptions.MicroBatchSize), "--ubatch-size", "-ub")
                .Alias(nameof(EngineOptions.GpuLayers), "--n-gpu-layers", "-ngl")
                .Alias(nameof(EngineOptions.FlashAttention), "--flash-attn", "-fa")
                .Alias(nameof(EngineOptions.NativeLibraryDirectory), "--native-dir")
                .ValueName(nameof(EngineOptions.NativeLibraryDirectory), "DIR")
                .Negation(nameof(EngineOptions.EnableEmbeddings), "--no-embeddings")));
}
