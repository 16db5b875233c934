using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>Server-wide state: the resourceVersion counter, the registry, and the uid / owner indexes GC uses.</summary>
internal sealed class TestApiServerState
{
    private long _rv;

    public TestApiServerState(TestApiServerOptions options)
    {
        Options = options;
        // Start above 1 so that "0" and small numbers a client invents never look current.
        _rv = 100;
        Registry = new ResourceRegistry(this);
    }

    public TestApiServerOptions Options { get; }
    public ResourceRegistry Registry { get; }

    public long CurrentRv => Interlocked.Read(ref _rv);
    public long NextRv() => Interlocked.Increment(ref _rv);

    /// <summary>uid → where the live object is.</summary>
    public ConcurrentDictionary<string, (ResourceStore Store, string Ns, string Name)> ByUid { get; } = new();

    /// <summary>owner uid → dependents (store, namespace, name).</summary>
    public ConcurrentDictionary<string, ConcurrentDictionary<(ResourceStore Store, string Ns, string Name), byte>> Dependents { get; } = new();

    public void Index(StoredObject now, StoredObject? old, ResourceStore store)
    {
        if (old is not null)
        {
            foreach (var o in old.OwnerUids)
            {
                if (!now.OwnerUids.Contains(o) && Dependents.TryGetValue(o, out var set))
                {
                    set.TryRemove((store, now.Namespace, now.Name), out _);
                }
            }
        }
        ByUid[now.Uid] = (store, now.Namespace, now.Name);
        foreach (var o in now.OwnerUids)
        {
            Dependents.GetOrAdd(o, _ => new()).TryAdd((store, now.Namespace, now.Name), 0);
        }
    }

    public void Unindex(StoredObject old)
    {
        if (ByUid.TryGetValue(old.Uid, out var where))
        {
            ByUid.TryRemove(old.Uid, out _);
            foreach (var o in old.OwnerUids)
            {
                if (Dependents.TryGetValue(o, out var set))
                {
                    set.TryRemove((where.Store, old.Namespace, old.Name), out _);
                }
            }
        }
    }

    public string Now() => FormatTime(Options.TimeProvider.GetUtcNow());

    public static string FormatTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}

/// <summary>Extracts labels, selectable fields, owners and finalizers when an object is stored.</summary>
internal static class ObjectIndexing
{
    private static readonly string[] FieldPaths =
    [
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.phase",
        "status.podIP", "status.nominatedNodeName", "spec.unschedulable", "type", "spec.clusterIP", "spec.type",
        "status.successful", "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "reportingController", "regarding.kind",
        "regarding.namespace", "regarding.name", "regarding.uid",
    ];

    public static StoredObject ToStored(JsonObject obj, long rv)
    {
        var meta = (JsonObject)obj["metadata"]!;
        var ns = meta["namespace"]?.GetValue<string>() ?? "";
        var name = meta["name"]!.GetValue<string>();
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (meta["labels"] is JsonObject l)
        {
            foreach (var (k, v) in l)
            {
                labels[k] = v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : v?.ToJsonString() ?? "";
            }
        }
        var fields = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["metadata.name"] = name,
            ["metadata.namespace"] = ns,
        };
        foreach (var path in FieldPaths)
        {
            var v = JsonPaths.Dotted(obj, path);
            if (v is JsonValue jv)
            {
                fields[path] = jv.GetValueKind() switch
                {
                    JsonValueKind.String => jv.GetValue<string>(),
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    _ => jv.ToJsonString(),
                };
            }
        }
        string[] owners = [];
        if (meta["ownerReferences"] is JsonArray refs)
        {
            owners = [.. refs.Select(r => r?["uid"]?.GetValue<string>()).Where(u => !string.IsNullOrEmpty(u)).Select(u => u!)];
        }
        var finalizers = meta["finalizers"] is JsonArray f ? f.Count : 0;
        return new StoredObject
        {
            Namespace = ns,
            Name = name,
            Uid = meta["uid"]?.GetValue<string>() ?? "",
            ApiVersion = obj["apiVersion"]?.GetValue<string>() ?? "",
            ResourceVersion = rv,
            Json = Serialize(obj),
            Labels = labels,
            Fields = fields,
            OwnerUids = owners,
            Deleting = meta["deletionTimestamp"] is not null,
            FinalizerCount = finalizers,
        };
    }

    public static byte[] Serialize(JsonNode node)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            node.WriteTo(w);
        }
        return ms.ToArray();
    }
}

internal static class JsonPaths
{
    public static JsonNode? Dotted(JsonNode? node, string path)
    {
        foreach (var part in path.Split('.'))
        {
            if (node is not JsonObject o || !o.TryGetPropertyValue(part, out node))
            {
                return null;
            }
        }
        return node;
    }
}
