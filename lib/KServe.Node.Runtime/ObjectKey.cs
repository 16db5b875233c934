using k8s;
using k8s.Models;

namespace KServe.Node.Runtime;

/// <summary>Identifies one object: namespace (null for cluster-scoped kinds) and name. The unit of work of a controller.</summary>
public readonly record struct ObjectKey(string? Namespace, string Name)
{
    /// <summary>The key of a cluster-scoped object.</summary>
    public static ObjectKey Cluster(string name) => new(null, name);

    /// <summary>The key of <paramref name="obj"/> (its metadata namespace and name).</summary>
    public static ObjectKey From(IKubernetesObject<V1ObjectMeta> obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var meta = obj.Metadata ?? throw new ArgumentException("object has no metadata", nameof(obj));
        return new ObjectKey(string.IsNullOrEmpty(meta.NamespaceProperty) ? null : meta.NamespaceProperty, meta.Name);
    }

    /// <summary>Parses <c>namespace/name</c> or <c>name</c>.</summary>
    public static ObjectKey Parse(string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? new ObjectKey(null, value) : new ObjectKey(value[..slash], value[(slash + 1)..]);
    }

    /// <summary><c>namespace/name</c>, or <c>name</c> for cluster-scoped objects.</summary>
    public override string ToString() => Namespace is null ? Name : $"{Namespace}/{Name}";
}
