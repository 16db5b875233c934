using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.Runtime;

/// <summary>What happened to a cached object.</summary>
public enum ResourceEventType
{
    Added,
    Updated,
    Deleted,
}

/// <summary>A cache change: the object (for deletes, its last state) and, for updates, the previous one.</summary>
public sealed record ResourceEvent<T>(ResourceEventType Type, T Object, T? OldObject = null)
    where T : class;

/// <summary>What an informer lists and watches.</summary>
public sealed record InformerOptions
{
    /// <summary>Only this namespace (null = all namespaces or a cluster-scoped kind).</summary>
    public string? Namespace { get; init; }

    /// <summary>A label selector applied on the server.</summary>
    public string? LabelSelector { get; init; }

    /// <summary>A field selector applied on the server, e.g. <c>metadata.name=node-1</c> to watch one object.</summary>
    public string? FieldSelector { get; init; }

    /// <summary>How long one watch request lasts before the server ends it and the informer rewatches.</summary>
    public TimeSpan WatchTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>First reconnect delay after a failed list or watch (doubles, with jitter, up to <see cref="MaxBackoff"/>).</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest reconnect delay.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>The type-independent face of an informer.</summary>
public interface IInformer : IAsyncDisposable
{
    /// <summary>The resource it watches.</summary>
    ResourceType Type { get; }

    /// <summary>True once the first list has filled the cache.</summary>
    bool HasSynced { get; }

    /// <summary>Completes when the first list has filled the cache.</summary>
    Task WaitForSyncAsync(CancellationToken ct = default);

    /// <summary>Starts listing and watching (idempotent).</summary>
    void Start();

    /// <summary>Stops the watch loop.</summary>
    Task StopAsync();
}

/// <summary>
/// Lists, then watches from the list's resourceVersion (with bookmarks), keeping a local cache with indexes and
/// calling event handlers on each change. On 410 Gone it relists (emitting the differences as events); on a
/// dropped or failed watch it reconnects from the last seen resourceVersion after a jittered backoff.
/// </summary>
/// <remarks>Cached objects are shared: treat them as read-only (clone before changing one).</remarks>
public sealed class Informer<T> : IInformer
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    /// <summary>The built-in index of objects by namespace.</summary>
    public const string NamespaceIndex = "namespace";

    private readonly ResourceClient<T> _client;
    private readonly InformerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<ObjectKey, T> _items = [];
    private readonly Dictionary<string, Index> _indexes = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private Action<ResourceEvent<T>>[] _handlers = [];
    private Task? _loop;
    private string? _resourceVersion;

    public Informer(ResourceClient<T> client, InformerOptions? options = null, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _options = options ?? new InformerOptions();
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<Informer<T>>();
        _time = timeProvider ?? TimeProvider.System;
        _indexes[NamespaceIndex] = new Index(static o => [o.Metadata?.NamespaceProperty ?? ""]);
    }

    /// <inheritdoc />
    public ResourceType Type => _client.Type;

    /// <summary>The options this informer was created with.</summary>
    public InformerOptions Options => _options;

    /// <inheritdoc />
    public bool HasSynced => _synced.Task.IsCompleted;

    /// <summary>The last resourceVersion seen (list, event or bookmark).</summary>
    public string? ResourceVersion
    {
        get
        {
            lock (_lock)
            {
                return _resourceVersion;
            }
        }
    }

    /// <summary>Number of cached objects.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _items.Count;
            }
        }
    }

    /// <inheritdoc />
    public Task WaitForSyncAsync(CancellationToken ct = default) => _synced.Task.WaitAsync(ct);

    /// <inheritdoc />
    public void Start()
    {
        lock (_lock)
        {
            _loop ??= Task.Run(() => RunAsync(_stop.Token));
        }
    }

    /// <inheritdoc />
    public async Task StopAsync()
    {
        Task? loop;
        lock (_lock)
        {
            loop = _loop;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (loop is not null)
        {
            await loop.ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>The cached object, or null.</summary>
    public T? Get(ObjectKey key)
    {
        lock (_lock)
        {
            return _items.GetValueOrDefault(key);
        }
    }

    /// <summary>Cached objects, all or in one namespace.</summary>
    public IReadOnlyList<T> List(string? ns = null)
    {
        lock (_lock)
        {
            return ns is null ? [.. _items.Values] : ByIndexLocked(NamespaceIndex, ns);
        }
    }

    /// <summary>Cached objects whose index function <paramref name="indexName"/> yielded <paramref name="value"/>.</summary>
    public IReadOnlyList<T> ByIndex(string indexName, string value)
    {
        lock (_lock)
        {
            return ByIndexLocked(indexName, value);
        }
    }

    /// <summary>Cached objects carrying label <paramref name="key"/>=<paramref name="value"/> (the label index is built on first use).</summary>
    public IReadOnlyList<T> ByLabel(string key, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var indexName = "label:" + key;
        lock (_lock)
        {
            if (!_indexes.ContainsKey(indexName))
            {
                AddIndexLocked(indexName, o => o.Metadata?.Labels is { } labels && labels.TryGetValue(key, out var v) ? [v] : []);
            }

            return ByIndexLocked(indexName, value);
        }
    }

    /// <summary>Adds an index: <paramref name="indexFn"/> maps an object to the values it is found under.</summary>
    public void AddIndex(string name, Func<T, IEnumerable<string>> indexFn)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(indexFn);
        lock (_lock)
        {
            if (_indexes.ContainsKey(name))
            {
                throw new InvalidOperationException($"index '{name}' already exists on the {Type.Kind} informer");
            }

            AddIndexLocked(name, indexFn);
        }
    }

    /// <summary>
    /// Adds an event handler; it is called on the watch loop, so it must be quick (enqueue keys). Objects already
    /// cached are replayed to it as Added. Dispose the result to remove it.
    /// </summary>
    public IDisposable AddEventHandler(Action<ResourceEvent<T>> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        T[] existing;
        lock (_lock)
        {
            _handlers = [.. _handlers, handler];
            existing = [.. _items.Values];
        }

        foreach (var item in existing)
        {
            Invoke(handler, new ResourceEvent<T>(ResourceEventType.Added, item));
        }

        return new Registration(this, handler);
    }

    private void RemoveEventHandler(Action<ResourceEvent<T>> handler)
    {
        lock (_lock)
        {
            _handlers = [.. _handlers.Where(h => h != handler)];
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        var backoff = new Backoff(_options.MinBackoff, _options.MaxBackoff);
        var listOptions = new ListOptions { LabelSelector = _options.LabelSelector, FieldSelector = _options.FieldSelector };
        var needList = true;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (needList)
                {
                    var list = await _client.ListAsync(_options.Namespace, listOptions, ct).ConfigureAwait(false);
                    Replace(list.Items, list.ResourceVersion);
                    needList = false;
                    Log.Listed(_logger, Type.Kind, list.Items.Count, list.ResourceVersion);
                    _synced.TrySetResult();
                }

                var received = false;
                await foreach (var e in _client.WatchAsync(_options.Namespace, ResourceVersion, listOptions, _options.WatchTimeout, ct).ConfigureAwait(false))
                {
                    received = true;
                    Apply(e);
                }

                Log.WatchEnded(_logger, Type.Kind, ResourceVersion);
                if (received)
                {
                    backoff.Reset();
                }
                else
                {
                    // A watch that ends at once without a single event is a server or proxy problem: do not spin.
                    await Task.Delay(backoff.Next(), _time, ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (KubernetesApiException e) when (e.IsGone)
            {
                Log.WatchExpired(_logger, Type.Kind, ResourceVersion);
                needList = true;
            }
            catch (Exception e)
            {
                var delay = backoff.Next();
                if (needList)
                {
                    Log.ListFailed(_logger, e, Type.Kind, delay);
                }
                else
                {
                    Log.WatchFailed(_logger, e, Type.Kind, delay);
                }

                try
                {
                    await Task.Delay(delay, _time, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>Applies one watch event to the cache and calls the handlers (internal for the benchmarks).</summary>
    internal void Apply(WatchEvent<T> e)
    {
        var rv = e.Object.Metadata?.ResourceVersion;
        switch (e.Type)
        {
            case WatchEventType.Added:
            case WatchEventType.Modified:
                Upsert(e.Object, rv);
                break;
            case WatchEventType.Deleted:
                Delete(ObjectKey.From(e.Object), e.Object, rv);
                break;
            case WatchEventType.Bookmark:
                if (!string.IsNullOrEmpty(rv))
                {
                    lock (_lock)
                    {
                        _resourceVersion = rv;
                    }
                }

                break;
            default:
                break;
        }
    }

    private void Upsert(T obj, string? rv)
    {
        var key = ObjectKey.From(obj);
        ResourceEvent<T>? evt;
        Action<ResourceEvent<T>>[] handlers;
        lock (_lock)
        {
            if (!string.IsNullOrEmpty(rv))
            {
                _resourceVersion = rv;
            }

            evt = UpsertLocked(key, obj);
            handlers = _handlers;
        }

        Dispatch(handlers, evt);
    }

    private void Delete(ObjectKey key, T last, string? rv)
    {
        Action<ResourceEvent<T>>[] handlers;
        lock (_lock)
        {
            if (!string.IsNullOrEmpty(rv))
            {
                _resourceVersion = rv;
            }

            if (!RemoveLocked(key))
            {
                return;
            }

            handlers = _handlers;
        }

        Dispatch(handlers, new ResourceEvent<T>(ResourceEventType.Deleted, last));
    }

    private void Replace(IReadOnlyList<T> items, string resourceVersion)
    {
        var events = new List<ResourceEvent<T>>();
        Action<ResourceEvent<T>>[] handlers;
        lock (_lock)
        {
            var seen = new HashSet<ObjectKey>();
            foreach (var item in items)
            {
                var key = ObjectKey.From(item);
                seen.Add(key);
                if (UpsertLocked(key, item) is { } evt)
                {
                    events.Add(evt);
                }
            }

            foreach (var (key, old) in _items.Where(kv => !seen.Contains(kv.Key)).ToList())
            {
                RemoveLocked(key);
                events.Add(new ResourceEvent<T>(ResourceEventType.Deleted, old));
            }

            _resourceVersion = resourceVersion;
            handlers = _handlers;
        }

        foreach (var evt in events)
        {
            Dispatch(handlers, evt);
        }
    }

    private ResourceEvent<T>? UpsertLocked(ObjectKey key, T obj)
    {
        if (_items.TryGetValue(key, out var old))
        {
            // A relist returns unchanged objects too; only real changes are events.
            if (old.Metadata?.ResourceVersion is { Length: > 0 } oldRv && oldRv == obj.Metadata?.ResourceVersion)
            {
                return null;
            }

            UnindexLocked(key, old);
        }

        _items[key] = obj;
        IndexLocked(key, obj);
        return old is null
            ? new ResourceEvent<T>(ResourceEventType.Added, obj)
            : new ResourceEvent<T>(ResourceEventType.Updated, obj, old);
    }

    private bool RemoveLocked(ObjectKey key)
    {
        if (!_items.Remove(key, out var old))
        {
            return false;
        }

        UnindexLocked(key, old);
        return true;
    }

    private void AddIndexLocked(string name, Func<T, IEnumerable<string>> fn)
    {
        var index = new Index(fn);
        _indexes[name] = index;
        foreach (var (key, obj) in _items)
        {
            index.Add(key, obj);
        }
    }

    private void IndexLocked(ObjectKey key, T obj)
    {
        foreach (var index in _indexes.Values)
        {
            index.Add(key, obj);
        }
    }

    private void UnindexLocked(ObjectKey key, T obj)
    {
        foreach (var index in _indexes.Values)
        {
            index.Remove(key, obj);
        }
    }

    private List<T> ByIndexLocked(string indexName, string value)
    {
        if (!_indexes.TryGetValue(indexName, out var index))
        {
            throw new InvalidOperationException($"the {Type.Kind} informer has no index '{indexName}'");
        }

        return index.Map.TryGetValue(value, out var keys) ? [.. keys.Select(k => _items[k])] : [];
    }

    private void Dispatch(Action<ResourceEvent<T>>[] handlers, ResourceEvent<T>? evt)
    {
        if (evt is null)
        {
            return;
        }

        foreach (var handler in handlers)
        {
            Invoke(handler, evt);
        }
    }

    private void Invoke(Action<ResourceEvent<T>> handler, ResourceEvent<T> evt)
    {
        try
        {
            handler(evt);
        }
        catch (Exception e)
        {
            Log.HandlerFailed(_logger, e, Type.Kind);
        }
    }

    private sealed class Index(Func<T, IEnumerable<string>> fn)
    {
        public Dictionary<string, HashSet<ObjectKey>> Map { get; } = new(StringComparer.Ordinal);

        public void Add(ObjectKey key, T obj)
        {
            foreach (var value in fn(obj))
            {
                if (!Map.TryGetValue(value, out var keys))
                {
                    Map[value] = keys = [];
                }

                keys.Add(key);
            }
        }

        public void Remove(ObjectKey key, T obj)
        {
            foreach (var value in fn(obj))
            {
                if (Map.TryGetValue(value, out var keys) && keys.Remove(key) && keys.Count == 0)
                {
                    Map.Remove(value);
                }
            }
        }
    }

    private sealed class Registration(Informer<T> informer, Action<ResourceEvent<T>> handler) : IDisposable
    {
        public void Dispose() => informer.RemoveEventHandler(handler);
    }
}
