using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace KServe.Node.LlmServer.Hosting;

/// <summary>llm-server settings (configuration section <c>LlmServer</c>; every property is also a flag, see <see cref="ServerCommandLine"/>).</summary>
public sealed class LlmServerOptions
{
    public const string Section = "LlmServer";

    [Description("GGUF file, or a folder holding one")]
    [Required(ErrorMessage = "--model is required: a GGUF file or a folder holding one.")]
    public string Model { get; set; } = "";

    [Description("the GGUF to serve when --model is a folder with several")]
    public string? ModelFile { get; set; }

    [Description("Jinja chat template file to use instead of the GGUF's tokenizer.chat_template")]
    public string? ChatTemplateFile { get; set; }

    /// <summary>llama-server's <c>--chat-template-kwargs</c>; a request's <c>chat_template_kwargs</c> override these.</summary>
    [Description("JSON object of extra chat template variables for every request, e.g. '{\"enable_thinking\":false}'")]
    public string? ChatTemplateKwargs { get; set; }

    [Description("address to listen on")]
    public string Host { get; set; } = "0.0.0.0";

    [Description("port to listen on")]
    [Range(0, 65535, ErrorMessage = "--port must be from 0 to 65535.")]
    public int Port { get; set; } = 8080;

    [Description("model name clients pass as 'model' (default: the GGUF's file name without extension)")]
    public string? ServedModelName { get; set; }

    [Description("accepted Bearer key; none = no authentication")]
    public List<string> ApiKeys { get; set; } = [];

    /// <summary>Keys kept out of the process's arguments (which any local user can read in /proc).</summary>
    [Description("file of accepted Bearer keys, one a line ('#' starts a comment), in addition to --api-key")]
    public string? ApiKeyFile { get; set; }

    [Description("origin allowed by CORS, or * for any; none = CORS off")]
    public List<string> CorsOrigins { get; set; } = [];

    [Description("largest accepted request body")]
    [Range(1024, 1L << 30, ErrorMessage = "--max-request-bytes must be from 1 KiB to 1 GiB.")]
    public long MaxRequestBytes { get; set; } = 8 << 20;

    [Description("seconds between SSE keep-alive comments while a stream has nothing to send (long prefills)")]
    [Range(1, 3600, ErrorMessage = "--sse-ping-seconds must be from 1 to 3600.")]
    public int SsePingSeconds { get; set; } = 10;

    [Description("seconds in-flight requests get to finish on shutdown before they are cancelled")]
    [Range(0, 3600, ErrorMessage = "--shutdown-timeout-seconds must be from 0 to 3600.")]
    public int ShutdownTimeoutSeconds { get; set; } = 30;

    /// <summary>vLLM's parser names; <c>auto</c> picks one from the chat template.</summary>
    [Description("tool call format: auto (from the chat template), hermes, llama3_json or mistral")]
    [RegularExpression("^(auto|hermes|llama3_json|mistral)$", ErrorMessage = "--tool-call-parser must be auto, hermes, llama3_json or mistral.")]
    public string ToolCallParser { get; set; } = "auto";

    /// <summary>vLLM's <c>--reasoning-parser</c> names; <c>auto</c> picks one from the chat template.</summary>
    [Description("reasoning format split into 'reasoning_content': auto (a chat template that writes <think>), deepseek_r1, qwen3 or none")]
    [RegularExpression("^(auto|none|deepseek_r1|qwen3)$", ErrorMessage = "--reasoning-parser must be auto, none, deepseek_r1 or qwen3.")]
    public string ReasoningParser { get; set; } = "auto";

    /// <summary>vLLM's <c>matryoshka_dimensions</c>: a GGUF does not say whether its embeddings may be truncated.</summary>
    [Description("embedding sizes the model was trained to be truncated to (Matryoshka); an embeddings request's 'dimensions' must be one of them. None = 'dimensions' only as the model's own size")]
    public List<int> MatryoshkaDimensions { get; set; } = [];

    [Description("max_tokens when a request names none (bounded by the context)")]
    [Range(1, 1 << 20, ErrorMessage = "--default-max-tokens must be positive.")]
    public int DefaultMaxTokens { get; set; } = 1024;
}
