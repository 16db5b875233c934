using Microsoft.Extensions.Logging;

namespace KServe.Node.CacheController.Controllers;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "LocalModelNode/{Node}: created with {Count} model(s)")]
    public static partial void LocalModelNodeCreated(ILogger logger, string node, int count);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "LocalModelNode/{Node}: models now {Models}")]
    public static partial void LocalModelNodeUpdated(ILogger logger, string node, string models);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "LocalModelNode/{Node}: deleted with its Node")]
    public static partial void LocalModelNodeDeleted(ILogger logger, string node);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Node/{Node}: placement labels +[{Added}] -[{Removed}]")]
    public static partial void PlacementLabels(ILogger logger, string node, string added, string removed);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "{Cache}: created {Kind}/{Name}")]
    public static partial void Created(ILogger logger, string cache, string kind, string name);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "{Cache}: deleted {Kind}/{Name}")]
    public static partial void Deleted(ILogger logger, string cache, string kind, string name);

    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "{Cache}: waiting for {Count} LocalModelNode(s) to drop the model before removing the finalizer")]
    public static partial void WaitingForNodes(ILogger logger, string cache, int count);

    [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "{Cache}: finalizer removed")]
    public static partial void FinalizerRemoved(ILogger logger, string cache);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "{Cache}: InferenceService {Isvc} asks for node group {Group}, which is not one of the cache's groups")]
    public static partial void UnknownNodeGroup(ILogger logger, string cache, string isvc, string group);

    [LoggerMessage(EventId = 15, Level = LogLevel.Information, Message = "{Cache}: status copies {Available}/{Total} (failed {Failed})")]
    public static partial void StatusWritten(ILogger logger, string cache, int available, int total, int failed);


    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "Admission request refused: {Reason}")]
    public static partial void AdmissionBadRequest(ILogger logger, string reason);

    [LoggerMessage(EventId = 23, Level = LogLevel.Information, Message = "InferenceService watch {Isvc}, LLMInferenceService watch {Llm}")]
    public static partial void IsvcWatch(ILogger logger, string isvc, string llm);
}
