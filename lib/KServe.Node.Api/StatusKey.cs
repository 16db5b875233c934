namespace KServe.Node.Api;

/// <summary>
/// The key of a model entry in <c>LocalModelNode.status.modelStatus</c> (spec §1.5): the cache name for a
/// cluster cache, <c>{namespace}/{name}</c> for a namespace cache.
/// </summary>
public static class StatusKey
{
    /// <summary>Returns <paramref name="modelName"/> when <paramref name="cacheNamespace"/> is empty, else <c>{ns}/{name}</c>.</summary>
    public static string For(string modelName, string? cacheNamespace)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        return string.IsNullOrEmpty(cacheNamespace) ? modelName : $"{cacheNamespace}/{modelName}";
    }

    /// <summary>Splits a status key into its namespace (null for a cluster cache) and cache name.</summary>
    public static (string? Namespace, string Name) Parse(string statusKey)
    {
        ArgumentNullException.ThrowIfNull(statusKey);
        var slash = statusKey.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? (null, statusKey) : (statusKey[..slash], statusKey[(slash + 1)..]);
    }
}
