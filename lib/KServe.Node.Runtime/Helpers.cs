using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace KServe.Node.Runtime;

/// <summary>Copies of API objects (cached objects are shared and must not be changed in place).</summary>
public static class ObjectCopy
{
    /// <summary>A deep copy through JSON (unknown fields survive as far as the type keeps them).</summary>
    public static T Clone<T>(T obj)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(obj);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), KubeTransport.JsonOptions);
        return (T)JsonSerializer.Deserialize(bytes, obj.GetType(), KubeTransport.JsonOptions)!;
    }

    /// <summary>The JSON of a top-level field (e.g. <c>status</c>), or null when absent.</summary>
    internal static JsonNode? Field(object obj, string name) =>
        JsonSerializer.SerializeToNode(obj, obj.GetType(), KubeTransport.JsonOptions)?[name];
}

/// <summary>Optimistic updates that re-read and retry on 409 Conflict.</summary>
public static class Updates
{
    /// <summary>How many times a conflicting write is retried before the conflict is thrown.</summary>
    public const int MaxConflictRetries = 8;

    /// <summary>
    /// Applies <paramref name="mutate"/> to a copy of <paramref name="current"/> and replaces the object (or its status
    /// subresource) when mutate reports a change. On a conflict it re-reads and mutates the fresh object. Returns the
    /// stored object (unchanged when nothing changed), or null when the object is gone.
    /// </summary>
    public static async Task<T?> UpdateAsync<T>(
        ResourceClient<T> client, T current, Func<T, bool> mutate, bool status = false, CancellationToken ct = default)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(mutate);
        var key = ObjectKey.From(current);
        for (var attempt = 0; ; attempt++)
        {
            var copy = ObjectCopy.Clone(current);
            if (!mutate(copy))
            {
                return current;
            }

            try
            {
                return status
                    ? await client.ReplaceStatusAsync(copy, ct).ConfigureAwait(false)
                    : await client.ReplaceAsync(copy, ct).ConfigureAwait(false);
            }
            catch (KubernetesApiException e) when (e.IsConflict && attempt < MaxConflictRetries)
            {
                var fresh = await client.GetAsync(key, ct).ConfigureAwait(false);
                if (fresh is null)
                {
                    return null;
                }

                current = fresh;
            }
            catch (KubernetesApiException e) when (e.IsNotFound)
            {
                return null;
            }
        }
    }
}

/// <summary>Adds and removes finalizers with conflict-safe updates.</summary>
public static class Finalizers
{
    /// <summary>Ensures <paramref name="finalizer"/> is on the object; returns the stored object (null if gone).</summary>
    public static Task<T?> AddAsync<T>(ResourceClient<T> client, T obj, string finalizer, CancellationToken ct = default)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentException.ThrowIfNullOrEmpty(finalizer);
        return Updates.UpdateAsync(client, obj, o =>
        {
            if (o.Metadata.DeletionTimestamp is not null)
            {
                // A deleting object cannot take new finalizers.
                return false;
            }

            return o.AddFinalizer(finalizer);
        }, status: false, ct);
    }

    /// <summary>Removes <paramref name="finalizer"/> from the object; returns the stored object (null if gone, e.g. deleted by this removal).</summary>
    public static Task<T?> RemoveAsync<T>(ResourceClient<T> client, T obj, string finalizer, CancellationToken ct = default)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentException.ThrowIfNullOrEmpty(finalizer);
        return Updates.UpdateAsync(client, obj, o => o.RemoveFinalizer(finalizer), status: false, ct);
    }
}

/// <summary>Owner references: garbage collection of children with their owner, and mapping child events to owners.</summary>
public static class OwnerReferences
{
    /// <summary>
    /// Sets <paramref name="owner"/> as an owner of <paramref name="child"/> (the controller owner unless
    /// <paramref name="controller"/> is false). Returns true when the child changed. Throws when another object
    /// already controls the child.
    /// </summary>
    public static bool Set(
        IKubernetesObject<V1ObjectMeta> child, IKubernetesObject<V1ObjectMeta> owner, bool controller = true, bool blockOwnerDeletion = true)
    {
        ArgumentNullException.ThrowIfNull(child);
        ArgumentNullException.ThrowIfNull(owner);
        var type = ResourceType.Of(owner.GetType());
        var apiVersion = owner.ApiVersion ?? type.ApiVersion;
        var kind = owner.Kind ?? type.Kind;
        var uid = owner.Metadata?.Uid;
        if (string.IsNullOrEmpty(uid))
        {
            throw new ArgumentException($"owner {kind}/{owner.Metadata?.Name} has no uid (read it from the API first)", nameof(owner));
        }

        if (type.Namespaced && owner.Metadata!.NamespaceProperty != child.Metadata?.NamespaceProperty)
        {
            throw new ArgumentException(
                $"{kind}/{owner.Metadata.Name} in namespace {owner.Metadata.NamespaceProperty} cannot own an object in another namespace; label it and clean it up under a finalizer instead",
                nameof(child));
        }

        var meta = child.Metadata ?? throw new ArgumentException("child has no metadata", nameof(child));
        meta.OwnerReferences ??= [];
        var refs = meta.OwnerReferences;
        if (controller && refs.FirstOrDefault(r => r.Controller == true && r.Uid != uid) is { } other)
        {
            throw new InvalidOperationException($"{child.Kind}/{meta.Name} is already controlled by {other.Kind}/{other.Name}");
        }

        var wanted = new V1OwnerReference
        {
            ApiVersion = apiVersion,
            Kind = kind,
            Name = owner.Metadata!.Name,
            Uid = uid,
            Controller = controller,
            BlockOwnerDeletion = blockOwnerDeletion,
        };
        var existing = refs.FirstOrDefault(r => r.Uid == uid);
        if (existing is not null)
        {
            if (existing.ApiVersion == wanted.ApiVersion && existing.Kind == wanted.Kind && existing.Name == wanted.Name
                && existing.Controller == wanted.Controller && existing.BlockOwnerDeletion == wanted.BlockOwnerDeletion)
            {
                return false;
            }

            refs.Remove(existing);
        }

        refs.Add(wanted);
        return true;
    }

    /// <summary>True when <paramref name="owner"/> is the controller owner of <paramref name="child"/>.</summary>
    public static bool IsControlledBy(IKubernetesObject<V1ObjectMeta> child, IKubernetesObject<V1ObjectMeta> owner)
    {
        ArgumentNullException.ThrowIfNull(child);
        ArgumentNullException.ThrowIfNull(owner);
        return child.Metadata?.OwnerReferences?.Any(r => r.Controller == true && r.Uid == owner.Metadata?.Uid) == true;
    }
}

/// <summary>Writes the status subresource only when it changed, retrying conflicts by re-reading.</summary>
public static class StatusWriter
{
    /// <summary>
    /// Applies <paramref name="setStatus"/> to a copy of <paramref name="current"/>; when the JSON of <c>status</c>
    /// differs from before, writes the status subresource (re-reading and re-applying on 409 Conflict).
    /// Returns the stored object (<paramref name="current"/> itself when nothing changed; null when gone).
    /// </summary>
    public static Task<T?> UpdateStatusIfChangedAsync<T>(
        ResourceClient<T> client, T current, Action<T> setStatus, CancellationToken ct = default)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(setStatus);
        return Updates.UpdateAsync(client, current, o =>
        {
            var before = ObjectCopy.Field(o, "status");
            setStatus(o);
            return !JsonNode.DeepEquals(before, ObjectCopy.Field(o, "status"));
        }, status: true, ct);
    }
}
