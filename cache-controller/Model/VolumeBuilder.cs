using k8s;
using k8s.Models;

namespace KServe.Node.CacheController.Model;

/// <summary>What a volume is for: the download Job's mount or an InferenceService's model mount.</summary>
internal enum VolumePurpose
{
    Download,
    Serving,
}

/// <summary>The owner a cache's children point at (a controller owner reference), when they can be owned.</summary>
internal sealed record CacheOwner(CacheRef Cache, string Uid)
{
    public const string ApiVersion = Api.KServeApi.V1Alpha1ApiVersion;

    public V1OwnerReference ToReference() => new()
    {
        ApiVersion = ApiVersion,
        Kind = Cache.Kind,
        Name = Cache.Name,
        Uid = Uid,
        Controller = true,
        BlockOwnerDeletion = true,
    };
}

/// <summary>
/// Builds the PVs and PVCs of a cache from its node group's templates (spec §2.3 step 7, §2.5), with KServe's names
/// and owners. Objects that cannot be owned (a cluster-scoped PV under a namespace cache, a PVC in another
/// namespace) carry the tracking labels so that the finalizer can find and delete them.
/// </summary>
internal static class VolumeBuilder
{
    /// <summary>Label: the cache's name on every volume this controller creates.</summary>
    public const string CacheLabel = "localmodel.kserve-node.io/cache";

    /// <summary>Label: the namespace of a namespace cache.</summary>
    public const string CacheNamespaceLabel = "localmodel.kserve-node.io/cache-namespace";

    /// <summary>Label: the node group the volume belongs to.</summary>
    public const string NodeGroupLabel = "localmodel.kserve-node.io/node-group";

    /// <summary>Label: <c>download</c> or <c>serving</c>.</summary>
    public const string PurposeLabel = "localmodel.kserve-node.io/purpose";

    public static V1PersistentVolume DownloadPv(CacheOwner owner, string group, V1PersistentVolumeSpec template)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var cache = owner.Cache;
        return Pv(Naming.DownloadPv(cache, group), cache.IsNamespaced ? null : owner, cache, group, VolumePurpose.Download, template);
    }

    public static V1PersistentVolumeClaim DownloadPvc(CacheOwner owner, string group, string jobNamespace,
        V1PersistentVolumeClaimSpec template)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var cache = owner.Cache;
        // A namespace cache can own its download PVC only when the job namespace is its own (owner references never cross namespaces).
        var owned = !cache.IsNamespaced || string.Equals(cache.Namespace, jobNamespace, StringComparison.Ordinal);
        return Pvc(Naming.DownloadPvc(cache, group), jobNamespace, owned ? owner : null, cache, group, VolumePurpose.Download,
            Naming.DownloadPv(cache, group), template);
    }

    public static V1PersistentVolume ServingPv(CacheOwner owner, string group, string consumerNamespace, V1PersistentVolumeSpec template)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var cache = owner.Cache;
        return Pv(Naming.ServingPv(cache, group, consumerNamespace), cache.IsNamespaced ? null : owner, cache, group,
            VolumePurpose.Serving, template);
    }

    public static V1PersistentVolumeClaim ServingPvc(CacheOwner owner, string group, string consumerNamespace,
        V1PersistentVolumeClaimSpec template)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var cache = owner.Cache;
        // A cluster cache can own objects in any namespace; a namespace cache only serves its own namespace.
        return Pvc(Naming.ServingPvc(cache, group), consumerNamespace, owner, cache, group, VolumePurpose.Serving,
            Naming.ServingPv(cache, group, consumerNamespace), template);
    }

    private static V1PersistentVolume Pv(string name, CacheOwner? owner, CacheRef cache, string group, VolumePurpose purpose,
        V1PersistentVolumeSpec template) => new()
        {
            ApiVersion = "v1",
            Kind = "PersistentVolume",
            Metadata = Meta(name, null, owner, cache, group, purpose),
            Spec = Clone(template) ?? new V1PersistentVolumeSpec(),
        };

    private static V1PersistentVolumeClaim Pvc(string name, string ns, CacheOwner? owner, CacheRef cache, string group,
        VolumePurpose purpose, string volumeName, V1PersistentVolumeClaimSpec template)
    {
        var spec = Clone(template) ?? new V1PersistentVolumeClaimSpec();
        // The claim binds to exactly the PV made for it, never to another PV of the same class.
        spec.VolumeName = volumeName;
        return new V1PersistentVolumeClaim
        {
            ApiVersion = "v1",
            Kind = "PersistentVolumeClaim",
            Metadata = Meta(name, ns, owner, cache, group, purpose),
            Spec = spec,
        };
    }

    private static V1ObjectMeta Meta(string name, string? ns, CacheOwner? owner, CacheRef cache, string group, VolumePurpose purpose)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [PurposeLabel] = purpose == VolumePurpose.Download ? "download" : "serving",
        };
        AddIfValid(labels, CacheLabel, cache.Name);
        AddIfValid(labels, NodeGroupLabel, group);
        if (cache.IsNamespaced)
        {
            AddIfValid(labels, CacheNamespaceLabel, cache.Namespace!);
        }

        return new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = ns,
            Labels = labels,
            OwnerReferences = owner is null ? null : [owner.ToReference()],
        };
    }

    // Object names may be up to 253 characters; label values only 63. A longer name just goes untracked by label
    // (the finalizer deletes volumes by name first, so nothing leaks).
    private static void AddIfValid(Dictionary<string, string> labels, string key, string value)
    {
        if (value.Length <= 63)
        {
            labels[key] = value;
        }
    }

    /// <summary>A deep copy through the client's JSON, so that a template shared by many objects is never aliased.</summary>
    public static T? Clone<T>(T? value) where T : class =>
        value is null ? null : KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(value));
}
