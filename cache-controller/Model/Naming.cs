using KServe.Node.Api;

namespace KServe.Node.CacheController.Model;

/// <summary>
/// KServe's object naming for cache volumes (spec §2.6), exactly: the isvc webhook, the agent and existing
/// clusters all derive these names independently, so they must not change.
/// </summary>
internal static class Naming
{
    /// <summary>The download PV: <c>{cache}-{group}-download</c>, or <c>{cache}-{group}-{ns}-download</c> for a namespace cache.</summary>
    public static string DownloadPv(CacheRef cache, string group) =>
        cache.IsNamespaced ? KServeNames.NamespaceDownloadVolume(cache.Name, group, cache.Namespace!) : KServeNames.DownloadPv(cache.Name, group);

    /// <summary>The download PVC in the job namespace: <c>{cache}-{group}</c>, or <c>{cache}-{group}-{ns}-download</c> for a namespace cache.</summary>
    public static string DownloadPvc(CacheRef cache, string group) =>
        cache.IsNamespaced ? KServeNames.NamespaceDownloadVolume(cache.Name, group, cache.Namespace!) : KServeNames.DownloadPvc(cache.Name, group);

    /// <summary>
    /// The serving PV for consumers in <paramref name="consumerNamespace"/>: <c>{cache}-{group}-{consumerNs}</c>.
    /// A namespace cache only serves its own namespace, so that is always <c>{cache}-{group}-{ns}</c>.
    /// </summary>
    public static string ServingPv(CacheRef cache, string group, string consumerNamespace) =>
        KServeNames.ServingPv(cache.Name, group, cache.IsNamespaced ? cache.Namespace! : consumerNamespace);

    /// <summary>The serving PVC in the consumer namespace: <c>{cache}-{group}</c> (the isvc webhook's <c>localmodel-pvc-name</c>).</summary>
    public static string ServingPvc(CacheRef cache, string group) => KServeNames.ServingPvc(cache.Name, group);

    /// <summary>The LocalModelNode of a node is named after the node.</summary>
    public static string LocalModelNode(string nodeName) => nodeName;
}
