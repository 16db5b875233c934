namespace KServe.Node.Api.V1Alpha1;

/// <summary>
/// Values of <c>LocalModelCache.status.nodeStatus[node]</c> (spec §1.6). The CRD enum includes the empty
/// string. The wire values are kept as strings so that a value this code does not know survives a round trip.
/// </summary>
public static class NodeStatus
{
    /// <summary>The empty value the CRD enum allows.</summary>
    public const string Unset = "";

    /// <summary>The node's Ready condition is not True (set only when the node has no entry yet).</summary>
    public const string NodeNotReady = "NodeNotReady";

    /// <summary>The download has not started.</summary>
    public const string NodeDownloadPending = "NodeDownloadPending";

    /// <summary>The download is running.</summary>
    public const string NodeDownloading = "NodeDownloading";

    /// <summary>The model is on the node's disk.</summary>
    public const string NodeDownloaded = "NodeDownloaded";

    /// <summary>The download failed.</summary>
    public const string NodeDownloadError = "NodeDownloadError";

    /// <summary>Every value of the CRD enum, in the CRD's order.</summary>
    public static IReadOnlyList<string> All { get; } =
        [Unset, NodeNotReady, NodeDownloadPending, NodeDownloading, NodeDownloaded, NodeDownloadError];
}

/// <summary>Values of <c>LocalModelNode.status.modelStatus[statusKey]</c> (spec §1.6). The CRD enum includes the empty string.</summary>
public static class ModelStatus
{
    /// <summary>The empty value the CRD enum allows.</summary>
    public const string Unset = "";

    /// <summary>The download has not started.</summary>
    public const string ModelDownloadPending = "ModelDownloadPending";

    /// <summary>The download is running.</summary>
    public const string ModelDownloading = "ModelDownloading";

    /// <summary>The model is on disk and complete.</summary>
    public const string ModelDownloaded = "ModelDownloaded";

    /// <summary>The download failed.</summary>
    public const string ModelDownloadError = "ModelDownloadError";

    /// <summary>Every value of the CRD enum, in the CRD's order.</summary>
    public static IReadOnlyList<string> All { get; } =
        [Unset, ModelDownloadPending, ModelDownloading, ModelDownloaded, ModelDownloadError];

    /// <summary>
    /// The controller's mapping from a node's ModelStatus to the cache's NodeStatus (spec §1.6): the four
    /// download states map one to one; a missing or any other value maps to <c>NodeDownloadPending</c>.
    /// <c>NodeNotReady</c> is never derived from a ModelStatus.
    /// </summary>
    public static string ToNodeStatus(string? modelStatus) => modelStatus switch
    {
        ModelDownloadPending => NodeStatus.NodeDownloadPending,
        ModelDownloading => NodeStatus.NodeDownloading,
        ModelDownloaded => NodeStatus.NodeDownloaded,
        ModelDownloadError => NodeStatus.NodeDownloadError,
        _ => NodeStatus.NodeDownloadPending,
    };
}

/// <summary>Condition types this project adds to <c>LocalModelCache.status.conditions</c> (and the namespace cache).</summary>
public static class LocalModelCacheConditions
{
    /// <summary>True when every node listed in <c>status.nodeStatus</c> holds the model.</summary>
    public const string Ready = "Ready";

    /// <summary>True when some copies failed or some nodes are not ready.</summary>
    public const string Degraded = "Degraded";

    /// <summary>True when the model was not placed on some node because it would exceed the group's <c>storageLimit</c>.</summary>
    public const string StorageLimitExceeded = "StorageLimitExceeded";
}

/// <summary>Values of a condition's <c>status</c> field.</summary>
public static class ConditionStatus
{
    public const string True = "True";
    public const string False = "False";
    public const string Unknown = "Unknown";

    /// <summary>The three values, in the order the Kubernetes condition schema lists them.</summary>
    public static IReadOnlyList<string> All { get; } = [True, False, Unknown];
}
