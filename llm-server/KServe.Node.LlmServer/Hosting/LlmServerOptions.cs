using System.ComponentModel.DataAnnotations;

namespace KServe.Node.LlmServer.Hosting;

/// <summary>llm-server settings (configuration section <c>LlmServer</c>, filled from the command line).</summary>
public sealed class LlmServerOptions
{
    public const string Section = "LlmServer";

    /// <summary>A GGUF file, or a folder holding one (see <see cref="ModelPathResolver"/>).</summary>
    [Required(ErrorMessage = "--model is required: a GGUF file or a folder holding one.")]
    public string Model { get; set; } = "";

    /// <summary>Picks one GGUF inside the <see cref="Model"/> folder.</summary>
    public string? ModelFile { get; set; }

    /// <summary>A Jinja chat template file that replaces the GGUF's <c>tokenizer.chat_template</c>.</summary>
    public string? ChatTemplateFile { get; set; }

    public string Host { get; set; } = "0.0.0.0";

    [Range(0, 65535, ErrorMessage = "--port must be from 0 to 65535.")]
    public int Port { get; set; } = 8080;

    /// <summary>The name clients pass as <c>model</c>; defaults to the GGUF's file name without extension.</summary>
    public string? ServedModelName { get; set; }

    /// <summary>Accepted Bearer keys; empty = no authentication.</summary>
    public List<string> ApiKeys { get; set; } = [];

    /// <summary>Origins allowed by CORS; <c>*</c> allows any; empty = CORS off.</summary>
    public List<string> CorsOrigins { get; set; } = [];

    [Range(1024, 1L << 30, ErrorMessage = "--max-request-bytes must be from 1 KiB to 1 GiB.")]
    public long MaxRequestBytes { get; set; } = 8 << 20;

    /// <summary>Seconds between SSE comment pings while a stream has nothing to send (long prefills).</summary>
    [Range(1, 3600, ErrorMessage = "--sse-ping-seconds must be from 1 to 3600.")]
    public int SsePingSeconds { get; set; } = 10;

    /// <summary>Seconds in-flight requests get to finish on shutdown before they are cancelled.</summary>
    [Range(0, 3600, ErrorMessage = "--shutdown-timeout must be from 0 to 3600 seconds.")]
    public int ShutdownTimeoutSeconds { get; set; } = 30;

    /// <summary>
    /// How tool calls are read from the output and enforced for <c>tool_choice</c> required or named:
    /// <c>auto</c> (from the chat template), <c>hermes</c>, <c>llama3_json</c> or <c>mistral</c> (vLLM's parser names).
    /// </summary>
    [RegularExpression("^(auto|hermes|llama3_json|mistral)$", ErrorMessage = "--tool-call-parser must be auto, hermes, llama3_json or mistral.")]
    public string ToolCallParser { get; set; } = "auto";

    /// <summary>Default max_tokens when a request names none (bounded by the context).</summary>
    [Range(1, 1 << 20, ErrorMessage = "--default-max-tokens must be positive.")]
    public int DefaultMaxTokens { get; set; } = 1024;
}
