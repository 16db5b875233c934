using k8s;
using k8s.Models;

namespace KServe.Node.Runtime;

/// <summary>
/// Common event filters for <see cref="ControllerBuilder"/>: adds and deletes always pass; updates pass when the
/// named part changed. Nodes, for one, are updated every few seconds by their heartbeats.
/// </summary>
public static class Predicates
{
    /// <summary>Updates pass when <c>metadata.generation</c> changed (a spec change), or a deletion began.</summary>
    public static Func<ResourceEvent<T>, bool> GenerationChanged<T>()
        where T : class, IKubernetesObject<V1ObjectMeta> =>
        e => e.Type != ResourceEventType.Updated || e.OldObject is null
            || e.OldObject.Metadata?.Generation != e.Object.Metadata?.Generation
            || (e.OldObject.Metadata?.DeletionTimestamp is null) != (e.Object.Metadata?.DeletionTimestamp is null);

    /// <summary>Updates pass when the labels changed.</summary>
    public static Func<ResourceEvent<T>, bool> LabelsChanged<T>()
        where T : class, IKubernetesObject<V1ObjectMeta> =>
        e => e.Type != ResourceEventType.Updated || e.OldObject is null
            || !SameMap(e.OldObject.Metadata?.Labels, e.Object.Metadata?.Labels);

    /// <summary>Updates pass when the annotations changed.</summary>
    public static Func<ResourceEvent<T>, bool> AnnotationsChanged<T>()
        where T : class, IKubernetesObject<V1ObjectMeta> =>
        e => e.Type != ResourceEventType.Updated || e.OldObject is null
            || !SameMap(e.OldObject.Metadata?.Annotations, e.Object.Metadata?.Annotations);

    /// <summary>Passes when any of <paramref name="predicates"/> passes.</summary>
    public static Func<ResourceEvent<T>, bool> Any<T>(params Func<ResourceEvent<T>, bool>[] predicates)
        where T : class =>
        e => predicates.Any(p => p(e));

    private static bool SameMap(IDictionary<string, string>? a, IDictionary<string, string>? b)
    {
        if (a is null || a.Count == 0)
        {
            return b is null || b.Count == 0;
        }

        return b is not null && a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
    }
}
