using Microsoft.Extensions.Logging;

namespace KServe.Node.Llama;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Message = "llama.cpp: {Message}")]
    public static partial void Native(ILogger logger, LogLevel level, string message);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Loaded model {Model} ({Parameters} parameters, {Quantization}) from {Path}; context {Context} tokens, {Sequences} parallel sequences, native libraries in {NativeDir} (CPU threads: {CpuThreading})")]
    public static partial void ModelLoaded(ILogger logger, string model, long parameters, string quantization, string path, int context, int sequences, string nativeDir, string cpuThreading);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "KV cache has no slot for a batch of {Tokens} tokens with {Used} cells in use by the ledger; freeing room and planning again")]
    public static partial void NoKvSlot(ILogger logger, int tokens, int used);

    [LoggerMessage(EventId = 16, Level = LogLevel.Debug, Message = "A decode of {Tokens} tokens stopped early: every request in it was cancelled")]
    public static partial void DecodeAborted(ILogger logger, int tokens);

    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "KV cache full ({Used} of {Total} cells): request {RequestId} preempted ({Tokens} tokens to recompute), back at the head of the queue")]
    public static partial void Preempted(ILogger logger, long requestId, int tokens, int used, int total);

    [LoggerMessage(EventId = 13, Level = LogLevel.Error, Message = "Inference step failed; the affected requests get an error and the engine continues")]
    public static partial void StepFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 14, Level = LogLevel.Debug, Message = "Request {RequestId} finished ({Reason}): {Prompt} prompt tokens ({Cached} cached), {Completion} completion tokens")]
    public static partial void RequestFinished(ILogger logger, long requestId, string reason, int prompt, int cached, int completion);

}
