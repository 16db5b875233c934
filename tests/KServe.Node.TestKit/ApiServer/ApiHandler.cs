using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>Parsed resource request path (Kubernetes docs "API Concepts": resource URIs).</summary>
internal sealed record ResourceRequest(ResourceType Type, string? Namespace, string? Name, string? Subresource, bool LegacyWatch);

/// <summary>Answers every HTTP request: resource verbs, watches, discovery.</summary>
internal sealed class ApiHandler(TestApiServerState state, Action<RecordedRequest> record)
{
    private static readonly byte[] Newline = "\n"u8.ToArray();
    private readonly ObjectOperations _ops = new(state);

    public ObjectOperations Operations => _ops;

    private sealed class Call
    {
        public string Verb = "discovery";
        public string? Group;
        public string Version = "";
        public string Resource = "";
        public string? Subresource;
        public string? Namespace;
        public string? Name;
        public bool Recorded;
    }

    public async Task HandleAsync(HttpContext ctx)
    {
        var call = new Call { Resource = ctx.Request.Path.Value ?? "/" };
        try
        {
            var path = ctx.Request.Path.Value ?? "/";
            var segs = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (!TryParseResource(segs, call, out var rr))
            {
                var body = Discovery.Answer(state, ctx, segs) ?? throw new ApiError(404, "NotFound", "the server could not find the requested resource");
                await WriteAsync(ctx, call, 200, body);
                return;
            }
            await DispatchAsync(ctx, call, rr!);
        }
        catch (ApiError e)
        {
            await WriteStatusAsync(ctx, call, e);
        }
        catch (JsonException e)
        {
            await WriteStatusAsync(ctx, call, ApiError.BadRequest($"the object provided could not be decoded: {e.Message}"));
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or KeyNotFoundException or InvalidCastException)
        {
            // Wrong JSON shapes (a number where a string belongs, an array where an object belongs) surface
            // from System.Text.Json.Nodes this way; they are the client's error, never a 500.
            await WriteStatusAsync(ctx, call, ApiError.BadRequest($"the object provided could not be decoded: {e.Message}"));
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await WriteStatusAsync(ctx, call, new ApiError(500, "InternalError", $"Internal error occurred: {e.Message}"));
        }
    }

    private bool TryParseResource(string[] segs, Call call, out ResourceRequest? rr)
    {
        rr = null;
        string group, version;
        string[] rest;
        if (segs.Length >= 3 && segs[0] == "api")
        {
            (group, version, rest) = ("", segs[1], segs[2..]);
        }
        else if (segs.Length >= 4 && segs[0] == "apis")
        {
            (group, version, rest) = (segs[1], segs[2], segs[3..]);
        }
        else
        {
            return false;
        }
        var legacyWatch = false;
        if (rest[0] == "watch")
        {
            legacyWatch = true;
            rest = rest[1..];
            if (rest.Length == 0)
            {
                return false;
            }
        }
        call.Group = group.Length == 0 ? null : group;
        call.Version = version;
        ResourceType? type;
        if (rest[0] == "namespaces" && rest.Length >= 3 && (type = state.Registry.Find(group, version, rest[2])) is { Namespaced: true })
        {
            call.Namespace = rest[1];
            call.Resource = rest[2];
            call.Name = rest.Length > 3 ? rest[3] : null;
            call.Subresource = rest.Length > 4 ? rest[4] : null;
            if (rest.Length > 5)
            {
                throw new ApiError(404, "NotFound", "the server could not find the requested resource");
            }
        }
        else
        {
            call.Resource = rest[0];
            call.Name = rest.Length > 1 ? rest[1] : null;
            call.Subresource = rest.Length > 2 ? rest[2] : null;
            type = state.Registry.Find(group, version, rest[0]);
            if (rest.Length > 3)
            {
                throw new ApiError(404, "NotFound", "the server could not find the requested resource");
            }
        }
        if (type is null)
        {
            throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }
        rr = new ResourceRequest(type, call.Namespace, call.Name, call.Subresource, legacyWatch);
        return true;
    }

    private async Task DispatchAsync(HttpContext ctx, Call call, ResourceRequest rr)
    {
        var q = ctx.Request.Query;
        var method = ctx.Request.Method;
        var type = rr.Type;
        var watch = rr.LegacyWatch || q["watch"] is { Count: > 0 } w && (w[0] is "true" or "1");
        call.Verb = method switch
        {
            "GET" when watch => "watch",
            "GET" when rr.Name is null => "list",
            "GET" => "get",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" when rr.Name is null => "deletecollection",
            "DELETE" => "delete",
            _ => method.ToLowerInvariant(),
        };
        if (rr.Subresource is not null && rr.Subresource != "status")
        {
            throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }
        if (rr.Subresource == "status" && !type.HasStatus && !(type.Group.Length == 0 && type.Plural == "namespaces"))
        {
            throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }
        var ns = rr.Namespace;
        if (type.Namespaced && ns is null && call.Verb is "get" or "create" or "update" or "patch" or "delete")
        {
            throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }
        var storeNs = type.Namespaced ? ns ?? "" : "";
        switch (call.Verb)
        {
            case "get":
                {
                    var o = type.Store.Get(storeNs, rr.Name!) ?? throw ApiError.NotFound(type, rr.Name!);
                    await WriteObjectAsync(ctx, call, 200, type, o);
                    return;
                }
            case "list":
                await ListAsync(ctx, call, type, ns);
                return;
            case "watch":
                await WatchAsync(ctx, call, type, ns, rr.Name);
                return;
            case "create":
                {
                    if (rr.Name is not null)
                    {
                        throw ApiError.MethodNotSupported(type, "create");
                    }
                    var body = await ReadObjectAsync(ctx);
                    if (type.Group == "apiextensions.k8s.io")
                    {
                        CrdRegistration.Validate(type, body);
                    }
                    var created = _ops.Create(type, ns, body);
                    created = AfterCrdWrite(type, created);
                    await WriteObjectAsync(ctx, call, 201, type, created);
                    return;
                }
            case "update":
                {
                    var body = await ReadObjectAsync(ctx);
                    if (type.Group == "apiextensions.k8s.io" && rr.Subresource is null)
                    {
                        CrdRegistration.Validate(type, body);
                    }
                    var updated = _ops.Update(type, storeNs, rr.Name!, rr.Subresource == "status", _ => body, out _);
                    updated = AfterCrdWrite(type, updated);
                    await WriteObjectAsync(ctx, call, 200, type, updated);
                    return;
                }
            case "patch":
                {
                    var patched = await PatchAsync(ctx, type, storeNs, rr);
                    patched = AfterCrdWrite(type, patched);
                    await WriteObjectAsync(ctx, call, 200, type, patched);
                    return;
                }
            case "delete":
                {
                    var (policy, uid, rv) = await ReadDeleteOptionsAsync(ctx);
                    var deleted = _ops.Delete(type.Store, type, storeNs, rr.Name!, policy, uid, rv);
                    await WriteObjectAsync(ctx, call, 200, type, deleted);
                    return;
                }
            case "deletecollection":
                {
                    var (policy, _, _) = await ReadDeleteOptionsAsync(ctx);
                    var filter = Selectors.Parse(q["labelSelector"], q["fieldSelector"], type);
                    var (items, _) = type.Store.List(type.Namespaced ? ns : null, filter);
                    var done = new List<StoredObject>();
                    foreach (var o in items)
                    {
                        try
                        {
                            done.Add(_ops.Delete(type.Store, type, o.Namespace, o.Name, policy));
                        }
                        catch (ApiError e) when (e.Code == 404)
                        {
                        }
                    }
                    await WriteListAsync(ctx, call, type, done, state.CurrentRv, null);
                    return;
                }
            default:
                throw new ApiError(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource");
        }
    }

    private StoredObject AfterCrdWrite(ResourceType type, StoredObject written)
    {
        if (type.Group != "apiextensions.k8s.io" || type.Plural != "customresourcedefinitions" || written.Deleting)
        {
            return written;
        }
        var crd = written.Parse();
        CrdRegistration.Apply(state, crd);
        var status = CrdRegistration.EstablishedStatus(crd, state.Now());
        return _ops.Update(type, "", written.Name, true, c =>
        {
            // Keep transition times stable across re-applies so that a re-apply is a no-op.
            if (c["status"]?["conditions"] is JsonArray old && old.Count == 2)
            {
                status["conditions"] = old.DeepClone();
            }
            c["status"] = status;
            return c;
        }, out _);
    }

    private async Task<StoredObject> PatchAsync(HttpContext ctx, ResourceType type, string ns, ResourceRequest rr)
    {
        var contentType = (ctx.Request.ContentType ?? "").Split(';')[0].Trim();
        var raw = await ReadBodyAsync(ctx);
        var patch = JsonNode.Parse(raw.Length == 0 ? "null"u8 : raw);
        Func<JsonObject, JsonObject> apply = contentType switch
        {
            "application/merge-patch+json" => cur => Patches.MergePatch(cur, patch ?? throw ApiError.BadRequest("empty patch")) as JsonObject
                ?? throw ApiError.BadRequest("a merge patch must be a JSON object"),
            "application/json-patch+json" => cur => Patches.JsonPatch(cur, patch as JsonArray ?? throw ApiError.BadRequest("a JSON patch must be an array of operations")) as JsonObject
                ?? throw ApiError.BadRequest("the patched document is not an object"),
            "application/strategic-merge-patch+json" when !type.IsCustom => cur => Patches.StrategicMerge(cur, patch as JsonObject ?? throw ApiError.BadRequest("a strategic merge patch must be a JSON object")) as JsonObject
                ?? throw ApiError.BadRequest("the patched document is not an object"),
            // Server-side apply is not implemented by this server.
            _ => throw ApiError.UnsupportedMediaType(contentType, type.IsCustom
                ? "application/json-patch+json, application/merge-patch+json"
                : "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"),
        };
        return _ops.Update(type, ns, rr.Name!, rr.Subresource == "status", apply, out _);
    }

    private static async Task<(string? Policy, string? Uid, string? Rv)> ReadDeleteOptionsAsync(HttpContext ctx)
    {
        string? policy = ctx.Request.Query["propagationPolicy"];
        string? uid = null, rv = null;
        var raw = await ReadBodyAsync(ctx);
        if (raw.Length > 0 && JsonNode.Parse(raw) is JsonObject o)
        {
            policy = o["propagationPolicy"]?.GetValue<string>() ?? policy;
            if (o["orphanDependents"]?.GetValue<bool>() == true)
            {
                policy ??= "Orphan";
            }
            uid = o["preconditions"]?["uid"]?.GetValue<string>();
            rv = o["preconditions"]?["resourceVersion"]?.GetValue<string>();
        }
        return (policy, uid, rv);
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext ctx)
    {
        using var ms = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(ms, ctx.RequestAborted);
        return ms.ToArray();
    }

    private static async Task<JsonObject> ReadObjectAsync(HttpContext ctx)
    {
        var contentType = (ctx.Request.ContentType ?? "application/json").Split(';')[0].Trim();
        if (contentType is not ("application/json" or "" or "*/*"))
        {
            // Protobuf and CBOR bodies are not decoded here; clients that asked for them fall back to JSON on 415.
            throw ApiError.UnsupportedMediaType(contentType, "application/json");
        }
        var raw = await ReadBodyAsync(ctx);
        if (raw.Length == 0)
        {
            throw ApiError.BadRequest("the request body is empty");
        }
        return JsonNode.Parse(raw) as JsonObject ?? throw ApiError.BadRequest("the object provided is not a JSON object");
    }

    private async Task ListAsync(HttpContext ctx, Call call, ResourceType type, string? ns)
    {
        var q = ctx.Request.Query;
        var filter = Selectors.Parse(q["labelSelector"], q["fieldSelector"], type);
        var (items, rv) = type.Store.List(type.Namespaced ? ns : null, filter);
        string? next = null;
        if (q["continue"] is { Count: > 0 } cont && !string.IsNullOrEmpty(cont[0]))
        {
            string after;
            try
            {
                after = Encoding.UTF8.GetString(Convert.FromBase64String(cont[0]!));
            }
            catch (FormatException)
            {
                throw ApiError.BadRequest("continue key is not valid");
            }
            items = [.. items.Where(o => string.CompareOrdinal(o.Namespace + "/" + o.Name, after) > 0)];
        }
        if (q["limit"] is { Count: > 0 } lim && int.TryParse(lim[0], CultureInfo.InvariantCulture, out var limit) && limit > 0 && items.Count > limit)
        {
            items = items.GetRange(0, limit);
            var last = items[^1];
            next = Convert.ToBase64String(Encoding.UTF8.GetBytes(last.Namespace + "/" + last.Name));
        }
        if (Tables.Wanted(ctx))
        {
            await WriteAsync(ctx, call, 200, Tables.Build(state, type, items, rv, ctx.Request.Query["includeObject"]));
            return;
        }
        await WriteListAsync(ctx, call, type, items, rv, next);
    }

    private async Task WriteListAsync(HttpContext ctx, Call call, ResourceType type, List<StoredObject> items, long rv, string? next)
    {
        Record(ctx, call, 200);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        var header = new JsonObject
        {
            ["kind"] = type.ListKind,
            ["apiVersion"] = type.GroupVersion,
            ["metadata"] = next is null
                ? new JsonObject { ["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture) }
                : new JsonObject { ["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture), ["continue"] = next },
        }.ToJsonString();
        var body = ctx.Response.Body;
        await body.WriteAsync(Encoding.UTF8.GetBytes(header[..^1] + ",\"items\":["), ctx.RequestAborted);
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                await body.WriteAsync(","u8.ToArray(), ctx.RequestAborted);
            }
            await body.WriteAsync(Bytes(type, items[i]), ctx.RequestAborted);
        }
        await body.WriteAsync("]}"u8.ToArray(), ctx.RequestAborted);
    }

    /// <summary>The object as this version serves it (versions of a CRD share storage; no conversion webhooks).</summary>
    private static byte[] Bytes(ResourceType type, StoredObject o)
    {
        if (o.ApiVersion == type.GroupVersion)
        {
            return o.Json;
        }
        var obj = o.Parse();
        obj["apiVersion"] = type.GroupVersion;
        return ObjectIndexing.Serialize(obj);
    }

    /// <summary>
    /// Watch (Kubernetes docs "API Concepts", "Efficient detection of changes" and "Watch bookmarks"):
    /// newline-delimited events; a resourceVersion older than the kept history answers an ERROR event
    /// carrying a 410 Expired Status, as the apiserver does for "too old resource version".
    /// </summary>
    private async Task WatchAsync(HttpContext ctx, Call call, ResourceType type, string? ns, string? name)
    {
        var q = ctx.Request.Query;
        string? fieldSelector = q["fieldSelector"];
        if (name is not null)
        {
            fieldSelector = string.IsNullOrEmpty(fieldSelector) ? $"metadata.name={name}" : $"{fieldSelector},metadata.name={name}";
        }
        var filter = Selectors.Parse(q["labelSelector"], fieldSelector, type) ?? (_ => true);
        long? fromRv = null;
        string? rvText = q["resourceVersion"];
        if (!string.IsNullOrEmpty(rvText) && rvText != "0")
        {
            if (!long.TryParse(rvText, CultureInfo.InvariantCulture, out var parsed) || parsed < 0)
            {
                throw new ApiError(400, "BadRequest", $"invalid resource version \"{rvText}\"");
            }
            fromRv = parsed;
        }
        var bookmarks = q["allowWatchBookmarks"] is { Count: > 0 } b && b[0] == "true";
        var table = Tables.Wanted(ctx);
        TimeSpan? timeout = q["timeoutSeconds"] is { Count: > 0 } ts && int.TryParse(ts[0], CultureInfo.InvariantCulture, out var secs) && secs > 0
            ? TimeSpan.FromSeconds(secs) : null;

        var watcher = type.Store.OpenWatch(type.Namespaced ? ns : null, filter, fromRv, out var expiredAt);
        Record(ctx, call, 200);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        var body = ctx.Response.Body;
        if (watcher is null)
        {
            var status = ApiError.Status(410, "Expired", $"too old resource version: {fromRv} ({expiredAt})", null);
            await body.WriteAsync(Encoding.UTF8.GetBytes(new JsonObject { ["type"] = "ERROR", ["object"] = status }.ToJsonString()), ctx.RequestAborted);
            await body.WriteAsync(Newline, ctx.RequestAborted);
            return;
        }
        await ctx.Response.StartAsync(ctx.RequestAborted);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, watcher.Dropped.Token);
        if (timeout is not null)
        {
            cts.CancelAfter(timeout.Value);
        }
        Timer? timer = null;
        if (bookmarks)
        {
            var interval = state.Options.BookmarkInterval;
            timer = new Timer(_ => type.Store.Bookmark(watcher), null, interval, interval);
        }
        try
        {
            var reader = watcher.Queue.Reader;
            while (await reader.WaitToReadAsync(cts.Token))
            {
                while (reader.TryRead(out var item))
                {
                    await body.WriteAsync(EventBytes(type, item, table), cts.Token);
                }
                await body.FlushAsync(cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
            if (watcher.Dropped.IsCancellationRequested && !ctx.RequestAborted.IsCancellationRequested)
            {
                // A simulated disconnect: the connection goes away without a clean end of stream.
                ctx.Abort();
            }
        }
        finally
        {
            if (timer is not null)
            {
                await timer.DisposeAsync();
            }
            type.Store.CloseWatch(watcher);
        }
    }

    private byte[] EventBytes(ResourceType type, WatchItem item, bool table)
    {
        using var ms = new MemoryStream();
        if (item.IsBookmark)
        {
            var bm = new JsonObject
            {
                ["type"] = "BOOKMARK",
                ["object"] = new JsonObject
                {
                    ["kind"] = type.Kind,
                    ["apiVersion"] = type.GroupVersion,
                    ["metadata"] = new JsonObject { ["resourceVersion"] = item.BookmarkRv.ToString(CultureInfo.InvariantCulture) },
                },
            };
            ms.Write(Encoding.UTF8.GetBytes(bm.ToJsonString()));
            ms.Write(Newline);
            return ms.ToArray();
        }
        var kind = item.Event.Type switch
        {
            StoreEventType.Added => "ADDED",
            StoreEventType.Modified => "MODIFIED",
            _ => "DELETED",
        };
        ms.Write("{\"type\":\""u8);
        ms.Write(Encoding.UTF8.GetBytes(kind));
        ms.Write("\",\"object\":"u8);
        ms.Write(table ? Tables.Build(state, type, [item.Event.Object], item.Event.Object.ResourceVersion, "Object", headers: false) : Bytes(type, item.Event.Object));
        ms.Write("}\n"u8);
        return ms.ToArray();
    }

    private async Task WriteObjectAsync(HttpContext ctx, Call call, int code, ResourceType type, StoredObject o)
    {
        if (Tables.Wanted(ctx))
        {
            await WriteAsync(ctx, call, code, Tables.Build(state, type, [o], o.ResourceVersion, ctx.Request.Query["includeObject"]));
            return;
        }
        await WriteAsync(ctx, call, code, Bytes(type, o));
    }

    private async Task WriteAsync(HttpContext ctx, Call call, int code, byte[] body)
    {
        Record(ctx, call, code);
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength = body.Length;
        await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted);
    }

    private async Task WriteStatusAsync(HttpContext ctx, Call call, ApiError e)
    {
        if (ctx.Response.HasStarted)
        {
            return;
        }
        await WriteAsync(ctx, call, e.Code, Encoding.UTF8.GetBytes(e.ToStatus().ToJsonString()));
    }

    private void Record(HttpContext ctx, Call call, int code)
    {
        if (call.Recorded)
        {
            return;
        }
        call.Recorded = true;
        record(new RecordedRequest(call.Verb, call.Group, call.Version, call.Resource, call.Subresource, call.Namespace, call.Name,
            ctx.Request.Headers.UserAgent.ToString(), code, state.Options.TimeProvider.GetUtcNow()));
    }
}
