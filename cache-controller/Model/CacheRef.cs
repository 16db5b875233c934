using KServe.Node.Api.V1Alpha1;

namespace KServe.Node.CacheController.Model;

/// <summary>
/// Identifies a cache: a cluster-scoped <c>LocalModelCache</c> (no namespace) or a
/// <c>LocalModelNamespaceCache</c> (with its namespace).
/// </summary>
internal readonly record struct CacheRef(string? Namespace, string Name)
{
    public static CacheRef Cluster(string name) => new(null, name);

    public static CacheRef Namespaced(string ns, string name) => new(ns, name);

    public bool IsNamespaced => !string.IsNullOrEmpty(Namespace);

    public string Kind => IsNamespaced ? LocalModelNamespaceCache.KubeKind : LocalModelCache.KubeKind;

    /// <summary>The key of this cache's entry in <c>LocalModelNode.status.modelStatus</c>: <c>name</c> or <c>ns/name</c>.</summary>
    public string StatusKey => Api.StatusKey.For(Name, Namespace);

    /// <summary><c>Kind/name</c> or <c>Kind/ns/name</c>, for logs and messages.</summary>
    public override string ToString() => $"{Kind}/{StatusKey}";
}
