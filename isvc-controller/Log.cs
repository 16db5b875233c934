using Microsoft.Extensions.Logging;

namespace KServe.Node.IsvcController;

/// <summary>Log messages of the InferenceService controller (event ids 5xx).</summary>
internal static partial class Log
{
    [LoggerMessage(500, LogLevel.Debug, "InferenceService/{Name} does not select runtime {Runtime}: left alone")]
    public static partial void NotOurs(ILogger logger, string name, string runtime);

    [LoggerMessage(501, LogLevel.Information, "InferenceService/{Name} is invalid: {Problems}")]
    public static partial void Invalid(ILogger logger, string name, string problems);

    [LoggerMessage(502, LogLevel.Information, "{Action} {Kind}/{Name}")]
    public static partial void ChildWritten(ILogger logger, string action, string kind, string name);

    [LoggerMessage(503, LogLevel.Information, "InferenceService/{Name} uses cache {Cache} (group {Group}): {State}")]
    public static partial void CacheMatched(ILogger logger, string name, string cache, string group, string state);

    [LoggerMessage(504, LogLevel.Information, "InferenceService/{Name} is being deleted: children removed")]
    public static partial void Deleted(ILogger logger, string name);

    [LoggerMessage(505, LogLevel.Warning, "{Kind}/{Name} exists but is not controlled by InferenceService/{Owner}: left as it is")]
    public static partial void NotControlled(ILogger logger, string kind, string name, string owner);

    [LoggerMessage(506, LogLevel.Warning, "Event for InferenceService/{Name} not recorded")]
    public static partial void EventFailed(ILogger logger, Exception exception, string name);
}
