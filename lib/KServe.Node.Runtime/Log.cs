using Microsoft.Extensions.Logging;

namespace KServe.Node.Runtime;

/// <summary>The runtime's log messages, with stable event ids (1xx informer, 2xx controller, 3xx election, 4xx helpers).</summary>
internal static partial class Log
{
    [LoggerMessage(100, LogLevel.Information, "Listed {Kind}: {Count} objects at resourceVersion {ResourceVersion}")]
    public static partial void Listed(ILogger logger, string kind, int count, string resourceVersion);

    [LoggerMessage(101, LogLevel.Debug, "Watch of {Kind} ended at resourceVersion {ResourceVersion}; rewatching")]
    public static partial void WatchEnded(ILogger logger, string kind, string? resourceVersion);

    [LoggerMessage(102, LogLevel.Information, "Watch of {Kind} expired at resourceVersion {ResourceVersion} (410 Gone); relisting")]
    public static partial void WatchExpired(ILogger logger, string kind, string? resourceVersion);

    [LoggerMessage(103, LogLevel.Warning, "Watch of {Kind} failed; retrying in {Delay}")]
    public static partial void WatchFailed(ILogger logger, Exception exception, string kind, TimeSpan delay);

    [LoggerMessage(104, LogLevel.Error, "An event handler of the {Kind} informer threw")]
    public static partial void HandlerFailed(ILogger logger, Exception exception, string kind);

    [LoggerMessage(105, LogLevel.Warning, "List of {Kind} failed; retrying in {Delay}")]
    public static partial void ListFailed(ILogger logger, Exception exception, string kind, TimeSpan delay);

    [LoggerMessage(200, LogLevel.Information, "Controller {Controller} starting {Workers} workers for {Kind}")]
    public static partial void ControllerStarting(ILogger logger, string controller, int workers, string kind);

    [LoggerMessage(201, LogLevel.Information, "Controller {Controller} stopped its workers")]
    public static partial void ControllerStopped(ILogger logger, string controller);

    [LoggerMessage(202, LogLevel.Debug, "Reconciled {Kind}/{Key}: {Result} in {ElapsedMs:F1} ms")]
    public static partial void Reconciled(ILogger logger, string kind, ObjectKey key, ReconcileResult result, double elapsedMs);

    [LoggerMessage(203, LogLevel.Warning, "Reconcile of {Kind}/{Key} failed (attempt {Attempt}); retrying with backoff")]
    public static partial void ReconcileFailed(ILogger logger, Exception exception, string kind, ObjectKey key, int attempt);

    [LoggerMessage(204, LogLevel.Error, "Reconcile of {Kind}/{Key} failed terminally; not retrying until it changes")]
    public static partial void ReconcileTerminal(ILogger logger, Exception exception, string kind, ObjectKey key);

    [LoggerMessage(205, LogLevel.Error, "A watch map function of controller {Controller} threw for {Kind}")]
    public static partial void MapFailed(ILogger logger, Exception exception, string controller, string kind);

    [LoggerMessage(300, LogLevel.Information, "Controller {Controller}: {Identity} became leader of lease {Lease}")]
    public static partial void StartedLeading(ILogger logger, string controller, string identity, string lease);

    [LoggerMessage(301, LogLevel.Warning, "Controller {Controller}: {Identity} lost lease {Lease}; workers stop")]
    public static partial void StoppedLeading(ILogger logger, string controller, string identity, string lease);

    [LoggerMessage(302, LogLevel.Information, "Controller {Controller}: lease {Lease} is held by {Leader}")]
    public static partial void NewLeader(ILogger logger, string controller, string lease, string leader);

    [LoggerMessage(303, LogLevel.Warning, "Controller {Controller}: leader election error on lease {Lease}")]
    public static partial void ElectionError(ILogger logger, Exception exception, string controller, string lease);

    [LoggerMessage(304, LogLevel.Information, "Controller {Controller}: released lease {Lease}")]
    public static partial void LeaseReleased(ILogger logger, string controller, string lease);

    [LoggerMessage(305, LogLevel.Warning, "Controller {Controller}: could not release lease {Lease}")]
    public static partial void LeaseReleaseFailed(ILogger logger, Exception exception, string controller, string lease);

    [LoggerMessage(400, LogLevel.Warning, "Could not record event {Reason} on {Kind}/{Name}")]
    public static partial void EventFailed(ILogger logger, Exception exception, string reason, string kind, string name);
}
