using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace KServe.Node.Runtime;

/// <summary>The kind of a PATCH body.</summary>
public enum PatchKind
{
    /// <summary>JSON merge patch (RFC 7386), <c>application/merge-patch+json</c>.</summary>
    Merge,

    /// <summary>JSON patch (RFC 6902), <c>application/json-patch+json</c>.</summary>
    Json,

    /// <summary>Strategic merge patch (built-in kinds only), <c>application/strategic-merge-patch+json</c>.</summary>
    StrategicMerge,
}

/// <summary>Selectors and paging for list and watch calls.</summary>
public sealed record ListOptions
{
    /// <summary>A label selector, e.g. <c>app=x,tier!=web</c>.</summary>
    public string? LabelSelector { get; init; }

    /// <summary>A field selector, e.g. <c>metadata.name=node-1</c>.</summary>
    public string? FieldSelector { get; init; }

    /// <summary>Page size of a list (0 = no paging).</summary>
    public int PageSize { get; init; } = 500;
}

/// <summary>One list answer: the items and the collection's resourceVersion to watch from.</summary>
public sealed record ResourceList<T>(IReadOnlyList<T> Items, string ResourceVersion);

/// <summary>One watch event. For <see cref="WatchEventType.Bookmark"/> only the object's resourceVersion is meaningful.</summary>
public readonly record struct WatchEvent<T>(WatchEventType Type, T Object);

/// <summary>
/// A typed REST client for one resource type, built-in or custom: get, list, create, replace, status, patch,
/// delete and watch. Errors are <see cref="KubernetesApiException"/>.
/// </summary>
public sealed class ResourceClient<T>
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    private readonly Kubernetes _client;

    /// <summary>Creates a client for <typeparamref name="T"/> (resource type from <see cref="ResourceType.Of{T}"/> unless given).</summary>
    public ResourceClient(Kubernetes client, ResourceType? type = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        Type = type ?? ResourceType.Of<T>();
    }

    /// <summary>The resource this client talks to.</summary>
    public ResourceType Type { get; }

    /// <summary>The underlying Kubernetes client.</summary>
    public Kubernetes Kubernetes => _client;

    /// <summary>Reads one object; null when it does not exist.</summary>
    public async Task<T?> GetAsync(ObjectKey key, CancellationToken ct = default)
    {
        try
        {
            return await KubeTransport.SendAsync<T>(_client, HttpMethod.Get, Type.ObjectPath(key.Namespace, key.Name), null, ct).ConfigureAwait(false);
        }
        catch (KubernetesApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    /// <summary>Lists objects in <paramref name="ns"/> (all namespaces when null), following continue tokens.</summary>
    public async Task<ResourceList<T>> ListAsync(string? ns = null, ListOptions? options = null, CancellationToken ct = default)
    {
        options ??= new ListOptions();
        var items = new List<T>();
        string? cont = null;
        string resourceVersion;
        do
        {
            var query = new QueryBuilder()
                .Add("labelSelector", options.LabelSelector)
                .Add("fieldSelector", options.FieldSelector)
                .Add("limit", options.PageSize > 0 ? options.PageSize.ToString(System.Globalization.CultureInfo.InvariantCulture) : null)
                .Add("continue", cont);
            var page = await KubeTransport.SendAsync<KubernetesList<T>>(
                _client, HttpMethod.Get, Type.CollectionPath(ns) + query, null, ct).ConfigureAwait(false);
            if (page.Items is not null)
            {
                items.AddRange(page.Items);
            }

            resourceVersion = page.Metadata?.ResourceVersion ?? "";
            cont = page.Metadata?.ContinueProperty;
        }
        while (!string.IsNullOrEmpty(cont));

        return new ResourceList<T>(items, resourceVersion);
    }

    /// <summary>Creates <paramref name="obj"/> (namespace from its metadata).</summary>
    public async Task<T> CreateAsync(T obj, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(obj);
        FillTypeMeta(obj);
        using var content = KubeTransport.JsonContent(obj);
        return await KubeTransport.SendAsync<T>(_client, HttpMethod.Post, Type.CollectionPath(obj.Metadata?.NamespaceProperty), content, ct).ConfigureAwait(false);
    }

    /// <summary>Replaces <paramref name="obj"/> (optimistic: 409 Conflict when its resourceVersion is stale).</summary>
    public async Task<T> ReplaceAsync(T obj, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(obj);
        FillTypeMeta(obj);
        var key = ObjectKey.From(obj);
        using var content = KubeTransport.JsonContent(obj);
        return await KubeTransport.SendAsync<T>(_client, HttpMethod.Put, Type.ObjectPath(key.Namespace, key.Name), content, ct).ConfigureAwait(false);
    }

    /// <summary>Replaces the status subresource of <paramref name="obj"/> (optimistic on resourceVersion).</summary>
    public async Task<T> ReplaceStatusAsync(T obj, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(obj);
        FillTypeMeta(obj);
        var key = ObjectKey.From(obj);
        using var content = KubeTransport.JsonContent(obj);
        return await KubeTransport.SendAsync<T>(_client, HttpMethod.Put, Type.ObjectPath(key.Namespace, key.Name) + "/status", content, ct).ConfigureAwait(false);
    }

    /// <summary>Patches an object (or its status subresource) with a JSON body of the given kind.</summary>
    public async Task<T> PatchAsync(ObjectKey key, PatchKind kind, string patch, bool status = false, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(patch);
        var mediaType = kind switch
        {
            PatchKind.Merge => "application/merge-patch+json",
            PatchKind.Json => "application/json-patch+json",
            PatchKind.StrategicMerge => "application/strategic-merge-patch+json",
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        using var content = KubeTransport.RawContent(patch, mediaType);
        var path = Type.ObjectPath(key.Namespace, key.Name) + (status ? "/status" : "");
        return await KubeTransport.SendAsync<T>(_client, HttpMethod.Patch, path, content, ct).ConfigureAwait(false);
    }

    /// <summary>Patches with a body serialized from <paramref name="patch"/> (an anonymous object, a JsonNode, ...).</summary>
    public Task<T> PatchAsync<TPatch>(ObjectKey key, PatchKind kind, TPatch patch, bool status = false, CancellationToken ct = default) =>
        PatchAsync(key, kind, JsonSerializer.Serialize(patch, KubeTransport.JsonOptions), status, ct);

    /// <summary>Deletes an object; false when it did not exist.</summary>
    public async Task<bool> DeleteAsync(ObjectKey key, string? propagationPolicy = null, CancellationToken ct = default)
    {
        try
        {
            var query = new QueryBuilder().Add("propagationPolicy", propagationPolicy);
            using var response = await KubeTransport.SendAsync(
                _client, HttpMethod.Delete, Type.ObjectPath(key.Namespace, key.Name) + query, null, streaming: false, ct).ConfigureAwait(false);
            return true;
        }
        catch (KubernetesApiException e) when (e.IsNotFound)
        {
            return false;
        }
    }

    /// <summary>
    /// Watches from <paramref name="resourceVersion"/> with bookmarks. Ends when the server closes the stream; an
    /// ERROR event (e.g. 410 Gone) is thrown as <see cref="KubernetesApiException"/>.
    /// </summary>
    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync(
        string? ns,
        string? resourceVersion,
        ListOptions? options = null,
        TimeSpan? timeout = null,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        var query = new QueryBuilder()
            .Add("watch", "true")
            .Add("allowWatchBookmarks", "true")
            .Add("resourceVersion", string.IsNullOrEmpty(resourceVersion) ? null : resourceVersion)
            .Add("labelSelector", options?.LabelSelector)
            .Add("fieldSelector", options?.FieldSelector)
            .Add("timeoutSeconds", timeout is { } t ? ((int)t.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture) : null);
        using var response = await KubeTransport.SendAsync(
            _client, HttpMethod.Get, Type.CollectionPath(ns) + query, null, streaming: true, ct).ConfigureAwait(false);
        var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using var _ = stream.ConfigureAwait(false);
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        try
        {
            while (true)
            {
                var read = await reader.ReadAsync(ct).ConfigureAwait(false);
                var buffer = read.Buffer;
                while (TryReadLine(ref buffer, out var line))
                {
                    if (line.IsEmpty)
                    {
                        continue;
                    }

                    yield return ParseEvent(line);
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
                if (read.IsCompleted)
                {
                    yield break;
                }
            }
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Parses one watch line (exposed for the benchmarks). Throws <see cref="KubernetesApiException"/> for ERROR events.</summary>
    internal static WatchEvent<T> ParseEvent(ReadOnlySequence<byte> line)
    {
        WatchEnvelope<T>? envelope;
        try
        {
            var reader = new Utf8JsonReader(line);
            envelope = JsonSerializer.Deserialize<WatchEnvelope<T>>(ref reader, KubeTransport.JsonOptions);
        }
        catch (JsonException)
        {
            // A Status object does not always fit T's shape (its "status" is a string); try that first.
            ThrowIfErrorEvent(line);
            throw;
        }

        if (envelope?.Type is null || envelope.Object is null)
        {
            throw new JsonException("watch event without type or object");
        }

        switch (envelope.Type)
        {
            case "ADDED":
                return new WatchEvent<T>(WatchEventType.Added, envelope.Object);
            case "MODIFIED":
                return new WatchEvent<T>(WatchEventType.Modified, envelope.Object);
            case "DELETED":
                return new WatchEvent<T>(WatchEventType.Deleted, envelope.Object);
            case "BOOKMARK":
                return new WatchEvent<T>(WatchEventType.Bookmark, envelope.Object);
            default:
                ThrowIfErrorEvent(line);
                throw new JsonException($"unknown watch event type '{envelope.Type}'");
        }
    }

    private static void ThrowIfErrorEvent(ReadOnlySequence<byte> line)
    {
        WatchEnvelope<V1Status>? error;
        try
        {
            var reader = new Utf8JsonReader(line);
            error = JsonSerializer.Deserialize<WatchEnvelope<V1Status>>(ref reader, KubeTransport.JsonOptions);
        }
        catch (JsonException)
        {
            return;
        }

        if (error?.Type == "ERROR")
        {
            var status = error.Object;
            var code = status?.Code is { } c ? (HttpStatusCode)c : HttpStatusCode.InternalServerError;
            throw new KubernetesApiException(code, status, $"watch error: {(int)code} {status?.Reason}: {status?.Message}");
        }
    }

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        var newline = buffer.PositionOf((byte)'\n');
        if (newline is null)
        {
            line = default;
            return false;
        }

        line = buffer.Slice(0, newline.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, newline.Value));
        return true;
    }

    private void FillTypeMeta(T obj)
    {
        obj.ApiVersion ??= Type.ApiVersion;
        obj.Kind ??= Type.Kind;
    }

    private sealed class WatchEnvelope<TObject>
    {
        [JsonPropertyName("type")]
        public string? Type { get; set; }

        [JsonPropertyName("object")]
        public TObject? Object { get; set; }
    }
}

/// <summary>Builds a URL query string, skipping null values.</summary>
internal sealed class QueryBuilder
{
    private readonly StringBuilder _sb = new();

    public QueryBuilder Add(string name, string? value)
    {
        if (value is null)
        {
            return this;
        }

        _sb.Append(_sb.Length == 0 ? '?' : '&').Append(name).Append('=').Append(Uri.EscapeDataString(value));
        return this;
    }

    public override string ToString() => _sb.ToString();
}
