using k8s;
using k8s.Models;
using KServe.Node.Runtime;

namespace KServe.Node.CacheController.Tests.Integration;

/// <summary>
/// Waits for objects to reach a state by watching them (an informer in the test), never by sleeping: each event
/// re-checks the condition, and the wait fails with the last seen state after the timeout.
/// </summary>
internal sealed class Observer<T> : IAsyncDisposable
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    private readonly Informer<T> _informer;
    private readonly Lock _lock = new();
    private readonly List<Action> _waiters = [];
    private readonly IDisposable _registration;
    private readonly List<(ObjectKey Key, string Json)> _history = [];

    private Observer(Kubernetes client)
    {
        _informer = new Informer<T>(new ResourceClient<T>(client));
        _registration = _informer.AddEventHandler(e =>
        {
            Action[] waiters;
            lock (_lock)
            {
                waiters = [.. _waiters];
                if (e.Type != ResourceEventType.Deleted)
                {
                    _history.Add((ObjectKey.From(e.Object), Fingerprint(e.Object)));
                }
            }

            foreach (var w in waiters)
            {
                w();
            }
        });
    }

    public static async Task<Observer<T>> StartAsync(Kubernetes client)
    {
        var o = new Observer<T>(client);
        o._informer.Start();
        await o._informer.WaitForSyncAsync().WaitAsync(DefaultTimeout);
        return o;
    }

    public T? Get(ObjectKey key) => _informer.Get(key);

    /// <summary>
    /// The versions of an object the watch delivered, as JSON without resourceVersion and managed fields: two equal
    /// neighbours mean a write that changed nothing.
    /// </summary>
    public IReadOnlyList<string> History(ObjectKey key)
    {
        lock (_lock)
        {
            return [.. _history.Where(h => h.Key == key).Select(h => h.Json)];
        }
    }

    private static string Fingerprint(T obj)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(KubernetesJson.Serialize(obj))!;
        if (node["metadata"] is System.Text.Json.Nodes.JsonObject meta)
        {
            meta.Remove("resourceVersion");
            meta.Remove("managedFields");
        }

        return node.ToJsonString();
    }

    public IReadOnlyList<T> List() => _informer.List();

    /// <summary>Waits until the object exists and satisfies <paramref name="condition"/>; returns it.</summary>
    public async Task<T> WaitAsync(ObjectKey key, Func<T, bool> condition, string what, TimeSpan? timeout = null)
    {
        var result = await WaitStateAsync(key, o => o is not null && condition(o), what, timeout);
        return result!;
    }

    /// <summary>Waits until some object satisfies <paramref name="condition"/>.</summary>
    public Task<T> WaitAnyAsync(Func<T, bool> condition, string what, TimeSpan? timeout = null) =>
        WaitForAsync(
            () => _informer.List().FirstOrDefault(condition) is { } found ? (true, found) : (false, null!),
            () => $"{typeof(T).Name}: {what} not seen among {_informer.Count} object(s)",
            timeout);

    /// <summary>Waits until the object is gone.</summary>
    public Task WaitGoneAsync(ObjectKey key, string what, TimeSpan? timeout = null) =>
        WaitStateAsync(key, o => o is null, what, timeout);

    private Task<T?> WaitStateAsync(ObjectKey key, Func<T?, bool> condition, string what, TimeSpan? timeout) =>
        WaitForAsync(
            () => _informer.Get(key) is var current && condition(current) ? (true, current) : (false, null),
            () => _informer.Get(key) is { } last
                ? $"{typeof(T).Name} {key}: {what} not reached; last seen: {KubernetesJson.Serialize(last)}"
                : $"{typeof(T).Name} {key}: {what} not reached; last seen: absent",
            timeout);

    /// <summary>
    /// Re-evaluates <paramref name="probe"/> now and after every informer event until it reports done; on
    /// timeout, throws with <paramref name="timeoutMessage"/>, computed then.
    /// </summary>
    private async Task<TResult> WaitForAsync<TResult>(Func<(bool Done, TResult Value)> probe, Func<string> timeoutMessage, TimeSpan? timeout)
    {
        var tcs = new TaskCompletionSource<TResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check()
        {
            var (done, value) = probe();
            if (done)
            {
                tcs.TrySetResult(value);
            }
        }

        lock (_lock)
        {
            _waiters.Add(Check);
        }

        try
        {
            Check();
            return await tcs.Task.WaitAsync(timeout ?? DefaultTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException(timeoutMessage());
        }
        finally
        {
            lock (_lock)
            {
                _waiters.Remove(Check);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _registration.Dispose();
        await _informer.DisposeAsync();
    }
}
