using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>An object as stored: its JSON bytes (what clients receive) plus what selectors and GC need.</summary>
internal sealed class StoredObject
{
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public required string Uid { get; init; }
    public required string ApiVersion { get; init; }
    public required long ResourceVersion { get; init; }
    public required byte[] Json { get; init; }
    public required IReadOnlyDictionary<string, string> Labels { get; init; }
    public required IReadOnlyDictionary<string, string> Fields { get; init; }
    public required string[] OwnerUids { get; init; }
    public required bool Deleting { get; init; }
    public required int FinalizerCount { get; init; }

    /// <summary>A fresh mutable copy of the object.</summary>
    public JsonObject Parse() => (JsonObject)JsonNode.Parse(Json)!;
}

internal enum StoreEventType { Added, Modified, Deleted }

internal readonly record struct StoreEvent(StoreEventType Type, StoredObject Object, StoredObject? Old);

/// <summary>Something a watch stream writes: an event, a bookmark at a resourceVersion, or an error.</summary>
internal readonly record struct WatchItem(StoreEvent Event, long BookmarkRv, bool IsBookmark);

/// <summary>One open watch: a filter and an unbounded queue, so writers never wait on a slow reader.</summary>
internal sealed class Watcher
{
    public required string? Namespace { get; init; }
    public required Func<StoredObject, bool> Matches { get; init; }
    public Channel<WatchItem> Queue { get; } = Channel.CreateUnbounded<WatchItem>(new UnboundedChannelOptions { SingleReader = true });
    public CancellationTokenSource Dropped { get; } = new();

    /// <summary>Queues the event as this watcher sees it: selector transitions become ADDED / DELETED as in the apiserver.</summary>
    public void Offer(in StoreEvent e)
    {
        if (Namespace is not null && e.Object.Namespace != Namespace)
        {
            return;
        }
        var now = Matches(e.Object);
        switch (e.Type)
        {
            case StoreEventType.Added or StoreEventType.Deleted:
                if (now)
                {
                    Queue.Writer.TryWrite(new WatchItem(e, 0, false));
                }
                break;
            default:
                var before = e.Old is not null && Matches(e.Old);
                if (now && before)
                {
                    Queue.Writer.TryWrite(new WatchItem(e, 0, false));
                }
                else if (now)
                {
                    Queue.Writer.TryWrite(new WatchItem(e with { Type = StoreEventType.Added }, 0, false));
                }
                else if (before)
                {
                    Queue.Writer.TryWrite(new WatchItem(e with { Type = StoreEventType.Deleted }, 0, false));
                }
                break;
        }
    }
}

/// <summary>
/// Objects of one resource (all versions share it), its bounded event history and its watchers. One lock
/// per resource: a write assigns the next global resourceVersion, stores and fans out inside it, so each
/// watcher sees the resource's events in resourceVersion order.
/// </summary>
internal sealed class ResourceStore
{
    private readonly object _lock = new();
    private readonly SortedDictionary<(string Ns, string Name), StoredObject> _objects = new();
    private readonly StoreEvent[] _history;
    private int _historyStart;
    private int _historyCount;
    private long _compactedRv;
    private readonly List<Watcher> _watchers = [];
    private readonly TestApiServerState _state;

    public ResourceStore(TestApiServerState state, string group, string plural)
    {
        _state = state;
        Group = group;
        Plural = plural;
        _history = new StoreEvent[state.Options.WatchHistorySize];
    }

    public string Group { get; }
    public string Plural { get; }

    public object SyncRoot => _lock;

    public StoredObject? Get(string ns, string name)
    {
        lock (_lock)
        {
            return _objects.TryGetValue((ns, name), out var o) ? o : null;
        }
    }

    /// <summary>A consistent snapshot (sorted by namespace/name) and the resourceVersion it is at.</summary>
    public (List<StoredObject> Items, long Rv) List(string? ns, Func<StoredObject, bool>? filter)
    {
        lock (_lock)
        {
            var items = new List<StoredObject>(_objects.Count);
            foreach (var o in _objects.Values)
            {
                if ((ns is null || o.Namespace == ns) && (filter is null || filter(o)))
                {
                    items.Add(o);
                }
            }
            return (items, _state.CurrentRv);
        }
    }

    public int CountInNamespace(string ns)
    {
        lock (_lock)
        {
            return _objects.Values.Count(o => o.Namespace == ns);
        }
    }

    /// <summary>Stores <paramref name="obj"/> with a new resourceVersion. Call with the lock held.</summary>
    public StoredObject CommitPutLocked(JsonObject obj, StoredObject? old)
    {
        var rv = _state.NextRv();
        var meta = (JsonObject)obj["metadata"]!;
        meta["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var stored = ObjectIndexing.ToStored(obj, rv);
        _objects[(stored.Namespace, stored.Name)] = stored;
        _state.Index(stored, old, this);
        EmitLocked(new StoreEvent(old is null ? StoreEventType.Added : StoreEventType.Modified, stored, old));
        return stored;
    }

    /// <summary>Removes the object, emitting DELETED with a new resourceVersion. Call with the lock held.</summary>
    public StoredObject CommitDeleteLocked(StoredObject old)
    {
        var rv = _state.NextRv();
        var obj = old.Parse();
        ((JsonObject)obj["metadata"]!)["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var stored = ObjectIndexing.ToStored(obj, rv);
        _objects.Remove((old.Namespace, old.Name));
        _state.Unindex(old);
        EmitLocked(new StoreEvent(StoreEventType.Deleted, stored, old));
        return stored;
    }

    private void EmitLocked(StoreEvent e)
    {
        if (_historyCount == _history.Length)
        {
            _compactedRv = _history[_historyStart].Object.ResourceVersion;
            _history[_historyStart] = default;
            _historyStart = (_historyStart + 1) % _history.Length;
            _historyCount--;
        }
        _history[(_historyStart + _historyCount) % _history.Length] = e;
        _historyCount++;
        foreach (var w in _watchers)
        {
            w.Offer(e);
        }
    }

    /// <summary>
    /// Opens a watch. <paramref name="fromRv"/> null: synthetic ADDED for every current object, then changes
    /// (the apiserver's "Get State and Start at Most Recent"). Otherwise the events after it, or
    /// <c>expiredAt</c> set when the history no longer reaches back that far.
    /// </summary>
    public Watcher? OpenWatch(string? ns, Func<StoredObject, bool> matches, long? fromRv, out long expiredAt)
    {
        var w = new Watcher { Namespace = ns, Matches = matches };
        lock (_lock)
        {
            expiredAt = 0;
            if (fromRv is null)
            {
                foreach (var o in _objects.Values)
                {
                    if ((ns is null || o.Namespace == ns) && matches(o))
                    {
                        w.Queue.Writer.TryWrite(new WatchItem(new StoreEvent(StoreEventType.Added, o, null), 0, false));
                    }
                }
            }
            else
            {
                if (fromRv.Value < _compactedRv)
                {
                    expiredAt = _compactedRv;
                    return null;
                }
                for (var i = 0; i < _historyCount; i++)
                {
                    var e = _history[(_historyStart + i) % _history.Length];
                    if (e.Object.ResourceVersion > fromRv.Value)
                    {
                        w.Offer(e);
                    }
                }
            }
            _watchers.Add(w);
        }
        return w;
    }

    public void CloseWatch(Watcher w)
    {
        lock (_lock)
        {
            _watchers.Remove(w);
        }
        w.Queue.Writer.TryComplete();
    }

    /// <summary>Queues a bookmark carrying the current resourceVersion behind every event already queued.</summary>
    public void Bookmark(Watcher w)
    {
        lock (_lock)
        {
            w.Queue.Writer.TryWrite(new WatchItem(default, _state.CurrentRv, true));
        }
    }

    public void Compact()
    {
        lock (_lock)
        {
            Array.Clear(_history);
            _historyStart = 0;
            _historyCount = 0;
            _compactedRv = _state.CurrentRv;
        }
    }

    public void DropWatches()
    {
        Watcher[] all;
        lock (_lock)
        {
            all = [.. _watchers];
        }
        foreach (var w in all)
        {
            w.Dropped.Cancel();
        }
    }

    /// <summary>Ends every watch (CRD removed or server stopping).</summary>
    public void Close()
    {
        Watcher[] all;
        lock (_lock)
        {
            all = [.. _watchers];
            _watchers.Clear();
        }
        foreach (var w in all)
        {
            w.Queue.Writer.TryComplete();
        }
    }
}
