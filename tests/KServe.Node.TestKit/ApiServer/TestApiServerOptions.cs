namespace KServe.Node.TestKit.ApiServer;

/// <summary>Settings of a <see cref="TestApiServer"/>.</summary>
public sealed class TestApiServerOptions
{
    /// <summary>Loopback port to bind; 0 picks a free one.</summary>
    public int Port { get; set; }

    /// <summary>Watch events kept per resource; a watch from an older resourceVersion gets 410 Gone.</summary>
    public int WatchHistorySize { get; set; } = 10_000;

    /// <summary>How often a watch that asked for bookmarks (allowWatchBookmarks) gets a BOOKMARK event.</summary>
    public TimeSpan BookmarkInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Requests recorded before the oldest are dropped (keeps long benchmarks bounded).</summary>
    public int MaxRecordedRequests { get; set; } = 200_000;

    /// <summary>When true (the apiserver's behaviour), creating an object in a missing namespace answers 404.</summary>
    public bool RequireNamespaces { get; set; } = true;

    /// <summary>Namespaces that exist from the start.</summary>
    public IReadOnlyList<string> InitialNamespaces { get; set; } = ["default", "kube-system", "kube-public", "kube-node-lease"];

    /// <summary>Clock for creationTimestamp / deletionTimestamp.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal void Validate()
    {
        if (Port is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(Port), Port, "Port must be 0..65535");
        }
        if (WatchHistorySize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(WatchHistorySize), WatchHistorySize, "WatchHistorySize must be at least 1");
        }
        if (BookmarkInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(BookmarkInterval), BookmarkInterval, "BookmarkInterval must be positive");
        }
    }
}

/// <summary>One request the server answered, for tests that assert what a component called.</summary>
/// <param name="Verb">get, list, watch, create, update, patch, delete, deletecollection, or discovery for non-resource paths.</param>
/// <param name="Group">API group; null for the core group.</param>
public sealed record RecordedRequest(
    string Verb,
    string? Group,
    string Version,
    string Resource,
    string? Subresource,
    string? Namespace,
    string? Name,
    string UserAgent,
    int StatusCode,
    DateTimeOffset Time);
