using System.Collections.Concurrent;
using System.Reflection;
using k8s.Models;

namespace KServe.Node.Runtime;

/// <summary>
/// Describes a Kubernetes resource: where its REST paths live and what it is called. Built-in and CRD types alike.
/// </summary>
/// <param name="Group">API group; empty for the core group (<c>/api/v1</c>).</param>
/// <param name="Version">API version, e.g. <c>v1</c> or <c>v1alpha1</c>.</param>
/// <param name="Plural">Resource name in paths, e.g. <c>configmaps</c>.</param>
/// <param name="Kind">Kind, e.g. <c>ConfigMap</c>.</param>
/// <param name="Namespaced">True for namespaced kinds.</param>
public sealed record ResourceType(string Group, string Version, string Plural, string Kind, bool Namespaced)
{
    private static readonly ConcurrentDictionary<Type, ResourceType> s_types = new();

    // Built-in kinds that are cluster-scoped; everything else is assumed namespaced unless registered.
    private static readonly HashSet<string> s_clusterScopedBuiltIns = new(StringComparer.Ordinal)
    {
        "/Node", "/Namespace", "/PersistentVolume", "/ComponentStatus",
        "storage.k8s.io/StorageClass", "storage.k8s.io/CSIDriver", "storage.k8s.io/CSINode", "storage.k8s.io/VolumeAttachment",
        "rbac.authorization.k8s.io/ClusterRole", "rbac.authorization.k8s.io/ClusterRoleBinding",
        "apiextensions.k8s.io/CustomResourceDefinition", "apiregistration.k8s.io/APIService",
        "admissionregistration.k8s.io/MutatingWebhookConfiguration", "admissionregistration.k8s.io/ValidatingWebhookConfiguration",
        "scheduling.k8s.io/PriorityClass", "node.k8s.io/RuntimeClass", "certificates.k8s.io/CertificateSigningRequest",
        "gateway.networking.k8s.io/GatewayClass",
    };

    /// <summary><c>group/version</c>, or <c>version</c> for the core group.</summary>
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>
    /// The resource type of <typeparamref name="T"/>: a registration (<c>Register</c>) if any, else its
    /// <see cref="KubernetesEntityAttribute"/>. Cluster-scoped CRD kinds must be registered.
    /// </summary>
    public static ResourceType Of<T>() => Of(typeof(T));

    /// <inheritdoc cref="Of{T}()" />
    public static ResourceType Of(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return s_types.GetOrAdd(type, static t =>
        {
            var attr = t.GetCustomAttribute<KubernetesEntityAttribute>()
                ?? throw new InvalidOperationException(
                    $"{t.Name} has no [KubernetesEntity] attribute; register its resource type with ResourceType.Register<{t.Name}>(...)");
            if (string.IsNullOrEmpty(attr.Kind) || string.IsNullOrEmpty(attr.ApiVersion) || string.IsNullOrEmpty(attr.PluralName))
            {
                throw new InvalidOperationException($"{t.Name}'s [KubernetesEntity] attribute lacks Kind, ApiVersion or PluralName");
            }

            var group = attr.Group ?? "";
            var namespaced = !s_clusterScopedBuiltIns.Contains($"{group}/{attr.Kind}");
            return new ResourceType(group, attr.ApiVersion, attr.PluralName, attr.Kind, namespaced);
        });
    }

    /// <summary>Registers (or overrides) the resource type of <typeparamref name="T"/>, e.g. to mark a CRD kind cluster-scoped.</summary>
    public static void Register<T>(ResourceType type)
    {
        ArgumentNullException.ThrowIfNull(type);
        s_types[typeof(T)] = type;
    }

    /// <summary>Registers <typeparamref name="T"/> from its attribute with the given scope.</summary>
    public static ResourceType Register<T>(bool namespaced)
    {
        s_types.TryRemove(typeof(T), out _);
        var type = Of<T>() with { Namespaced = namespaced };
        s_types[typeof(T)] = type;
        return type;
    }

    /// <summary>The collection path, e.g. <c>/apis/g/v1/namespaces/ns/plural</c>; all namespaces when <paramref name="ns"/> is null.</summary>
    public string CollectionPath(string? ns)
    {
        var root = Group.Length == 0 ? $"/api/{Version}" : $"/apis/{Group}/{Version}";
        return Namespaced && ns is not null
            ? $"{root}/namespaces/{Uri.EscapeDataString(ns)}/{Plural}"
            : $"{root}/{Plural}";
    }

    /// <summary>The object path.</summary>
    public string ObjectPath(string? ns, string name)
    {
        if (Namespaced && string.IsNullOrEmpty(ns))
        {
            throw new ArgumentException($"{Kind} is namespaced: a namespace is required for {Kind}/{name}", nameof(ns));
        }

        return $"{CollectionPath(ns)}/{Uri.EscapeDataString(name)}";
    }

    /// <summary>True when an owner reference (apiVersion, kind) points at this type.</summary>
    public bool Matches(string? apiVersion, string? kind)
    {
        if (!string.Equals(kind, Kind, StringComparison.Ordinal) || apiVersion is null)
        {
            return false;
        }

        var slash = apiVersion.IndexOf('/', StringComparison.Ordinal);
        var group = slash < 0 ? "" : apiVersion[..slash];
        return string.Equals(group, Group, StringComparison.Ordinal);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Kind}.{ApiVersion}";
}
