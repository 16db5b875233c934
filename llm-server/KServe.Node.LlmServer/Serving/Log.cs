using Microsoft.Extensions.Logging;

namespace KServe.Node.LlmServer.Serving;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Loading model {Path} as '{Name}'")]
    public static partial void LoadingModel(ILogger logger, string path, string name);

    [LoggerMessage(2, LogLevel.Information, "Model '{Name}' ready: context {ContextSize} tokens, chat template: {Template}")]
    public static partial void ModelReady(ILogger logger, string name, int contextSize, string template);

    [LoggerMessage(3, LogLevel.Critical, "Model could not be loaded: {Reason}")]
    public static partial void LoadFailed(ILogger logger, string reason, Exception exception);

    [LoggerMessage(4, LogLevel.Warning, "The model's chat template does not parse ({Reason}); using ChatML")]
    public static partial void TemplateFallback(ILogger logger, string reason);

    [LoggerMessage(5, LogLevel.Information, "Shutting down: {InFlight} requests in flight, waiting up to {Seconds}s")]
    public static partial void Draining(ILogger logger, int inFlight, int seconds);

    [LoggerMessage(6, LogLevel.Warning, "Shutdown timeout reached: cancelling {InFlight} requests")]
    public static partial void CancellingInFlight(ILogger logger, int inFlight);

    [LoggerMessage(7, LogLevel.Information, "{Method} {Path} -> {Status} in {Ms} ms")]
    public static partial void RequestDone(ILogger logger, string method, string path, int status, long ms);

    [LoggerMessage(8, LogLevel.Information, "Client went away; request cancelled after {Tokens} tokens")]
    public static partial void ClientGone(ILogger logger, int tokens);

    [LoggerMessage(9, LogLevel.Warning, "Request rejected: {Status} {Code} {Message}")]
    public static partial void Rejected(ILogger logger, int status, string? code, string message);

    [LoggerMessage(10, LogLevel.Error, "Unhandled error in {Path}")]
    public static partial void Unhandled(ILogger logger, string path, Exception exception);

    [LoggerMessage(11, LogLevel.Warning, "Generation error {Code}: {Message}")]
    public static partial void GenerationError(ILogger logger, string code, string message);

    [LoggerMessage(12, LogLevel.Information, "Tool calls use the {Format} format ({Source})")]
    public static partial void ToolFormat(ILogger logger, string format, string source);

    [LoggerMessage(14, LogLevel.Information, "Reasoning is read in the {Format} format ({Source})")]
    public static partial void ReasoningFormat(ILogger logger, string format, string source);

    [LoggerMessage(13, LogLevel.Debug, "Ignoring request fields this server does not know: {Fields}")]
    public static partial void UnknownFields(ILogger logger, string fields);
}
