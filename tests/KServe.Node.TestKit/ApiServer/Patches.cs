using System.Text.Json.Nodes;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>
/// The three patch formats the apiserver takes besides apply: JSON merge patch (RFC 7386), JSON patch
/// (RFC 6902) and a subset of strategic merge patch (Kubernetes docs "Update API Objects in Place Using
/// kubectl patch": maps merge, lists with a patch merge key merge by it, `$patch: delete|replace`,
/// `$deleteFromPrimitiveList`, `$setElementOrder` accepted and ignored).
/// </summary>
internal static class Patches
{
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject po)
        {
            return patch?.DeepClone();
        }
        var result = target as JsonObject ?? new JsonObject();
        foreach (var (k, v) in po)
        {
            if (v is null)
            {
                result.Remove(k);
            }
            else
            {
                result.TryGetPropertyValue(k, out var existing);
                var merged = MergePatch(existing?.DeepClone(), v);
                result[k] = merged;
            }
        }
        return result;
    }

    public static JsonNode JsonPatch(JsonNode doc, JsonArray ops)
    {
        foreach (var opNode in ops)
        {
            if (opNode is not JsonObject op || op["op"]?.GetValue<string>() is not { } name || op["path"]?.GetValue<string>() is not { } path)
            {
                throw ApiError.BadRequest("json patch: every operation needs \"op\" and \"path\"");
            }
            switch (name)
            {
                case "add":
                    doc = Add(doc, path, Value(op));
                    break;
                case "remove":
                    doc = Remove(doc, path, out _);
                    break;
                case "replace":
                    doc = Remove(doc, path, out _);
                    doc = Add(doc, path, Value(op));
                    break;
                case "move":
                    {
                        var from = op["from"]?.GetValue<string>() ?? throw ApiError.BadRequest("json patch: move needs \"from\"");
                        doc = Remove(doc, from, out var moved);
                        doc = Add(doc, path, moved);
                        break;
                    }
                case "copy":
                    {
                        var from = op["from"]?.GetValue<string>() ?? throw ApiError.BadRequest("json patch: copy needs \"from\"");
                        doc = Add(doc, path, Resolve(doc, from)?.DeepClone());
                        break;
                    }
                case "test":
                    if (!JsonNode.DeepEquals(Resolve(doc, path), op["value"]))
                    {
                        throw new ApiError(422, "Invalid", $"the server rejected our request due to an error in our request: testing value {path} failed");
                    }
                    break;
                default:
                    throw ApiError.BadRequest($"json patch: unexpected operation \"{name}\"");
            }
        }
        return doc;
    }

    private static JsonNode? Value(JsonObject op) =>
        op.TryGetPropertyValue("value", out var v) ? v?.DeepClone() : throw ApiError.BadRequest("json patch: operation needs \"value\"");

    private static string[] Tokens(string path)
    {
        if (path.Length == 0)
        {
            return [];
        }
        if (path[0] != '/')
        {
            throw ApiError.BadRequest($"json patch: invalid path \"{path}\"");
        }
        return [.. path[1..].Split('/').Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal))];
    }

    private static JsonNode? Resolve(JsonNode doc, string path)
    {
        JsonNode? n = doc;
        foreach (var t in Tokens(path))
        {
            n = n switch
            {
                JsonObject o when o.TryGetPropertyValue(t, out var c) => c,
                JsonArray a when int.TryParse(t, out var i) && i >= 0 && i < a.Count => a[i],
                _ => throw new ApiError(422, "Invalid", $"the server rejected our request due to an error in our request: path {path} does not exist"),
            };
        }
        return n;
    }

    private static JsonNode Add(JsonNode doc, string path, JsonNode? value)
    {
        var tokens = Tokens(path);
        if (tokens.Length == 0)
        {
            return value ?? throw ApiError.BadRequest("json patch: cannot replace the document with null");
        }
        var parent = tokens.Length == 1 ? doc : Resolve(doc, path[..path.LastIndexOf('/')]);
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o:
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i <= a.Count:
                a.Insert(i, value);
                break;
            default:
                throw new ApiError(422, "Invalid", $"the server rejected our request due to an error in our request: cannot add at {path}");
        }
        return doc;
    }

    private static JsonNode Remove(JsonNode doc, string path, out JsonNode? removed)
    {
        var tokens = Tokens(path);
        if (tokens.Length == 0)
        {
            throw ApiError.BadRequest("json patch: cannot remove the whole document");
        }
        var parent = tokens.Length == 1 ? doc : Resolve(doc, path[..path.LastIndexOf('/')]);
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o when o.TryGetPropertyValue(last, out removed):
                o.Remove(last);
                break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i < a.Count:
                removed = a[i];
                a.RemoveAt(i);
                break;
            default:
                throw new ApiError(422, "Invalid", $"the server rejected our request due to an error in our request: path {path} does not exist");
        }
        return doc;
    }

    // Patch merge keys of the built-in types the controllers patch (k8s.io/api: `patchMergeKey` tags).
    private static readonly Dictionary<string, string> MergeKeys = new(StringComparer.Ordinal)
    {
        ["containers"] = "name",
        ["initContainers"] = "name",
        ["ephemeralContainers"] = "name",
        ["env"] = "name",
        ["volumes"] = "name",
        ["volumeMounts"] = "mountPath",
        ["volumeDevices"] = "devicePath",
        ["imagePullSecrets"] = "name",
        ["conditions"] = "type",
        ["ownerReferences"] = "uid",
        ["hostAliases"] = "ip",
        ["topologySpreadConstraints"] = "topologyKey",
        ["resourceClaims"] = "name",
        ["secrets"] = "name",
        ["taints"] = "key",
        ["addresses"] = "type",
    };

    // Primitive lists whose patch strategy is "merge" (set union) rather than replace.
    private static readonly HashSet<string> MergedPrimitiveLists = new(StringComparer.Ordinal) { "finalizers" };

    public static JsonNode StrategicMerge(JsonNode? target, JsonNode patch)
    {
        if (patch is not JsonObject po)
        {
            return patch.DeepClone();
        }
        if (po["$patch"]?.GetValue<string>() == "replace")
        {
            var copy = (JsonObject)po.DeepClone();
            copy.Remove("$patch");
            return copy;
        }
        var result = target as JsonObject ?? new JsonObject();
        foreach (var (k, v) in po)
        {
            if (k == "$patch" || k.StartsWith("$setElementOrder/", StringComparison.Ordinal) || k == "$retainKeys")
            {
                continue;
            }
            if (k.StartsWith("$deleteFromPrimitiveList/", StringComparison.Ordinal))
            {
                var field = k["$deleteFromPrimitiveList/".Length..];
                if (result[field] is JsonArray arr && v is JsonArray del)
                {
                    for (var i = arr.Count - 1; i >= 0; i--)
                    {
                        if (del.Any(d => JsonNode.DeepEquals(d, arr[i])))
                        {
                            arr.RemoveAt(i);
                        }
                    }
                }
                continue;
            }
            if (v is null)
            {
                result.Remove(k);
                continue;
            }
            if (v is JsonObject vo && vo["$patch"]?.GetValue<string>() == "delete")
            {
                result.Remove(k);
                continue;
            }
            result.TryGetPropertyValue(k, out var existing);
            if (v is JsonArray va)
            {
                result[k] = MergeList(k, existing as JsonArray, va);
            }
            else if (v is JsonObject)
            {
                result[k] = StrategicMerge(existing?.DeepClone(), v);
            }
            else
            {
                result[k] = v.DeepClone();
            }
        }
        return result;
    }

    private static JsonArray MergeList(string field, JsonArray? existing, JsonArray patch)
    {
        if (patch.Any(p => p is JsonObject o && o["$patch"]?.GetValue<string>() == "replace"))
        {
            return new JsonArray([.. patch.Where(p => !(p is JsonObject o && o["$patch"] is not null)).Select(p => p?.DeepClone())]);
        }
        var key = MergeKeys.GetValueOrDefault(field);
        if (field == "ports")
        {
            key = patch.Any(p => p?["containerPort"] is not null) || existing?.Any(p => p?["containerPort"] is not null) == true ? "containerPort" : "port";
        }
        if (key is null)
        {
            if (MergedPrimitiveLists.Contains(field) && existing is not null)
            {
                var union = (JsonArray)existing.DeepClone();
                foreach (var p in patch)
                {
                    if (!union.Any(u => JsonNode.DeepEquals(u, p)))
                    {
                        union.Add(p?.DeepClone());
                    }
                }
                return union;
            }
            return (JsonArray)patch.DeepClone();
        }
        var result = existing is null ? new JsonArray() : (JsonArray)existing.DeepClone();
        foreach (var p in patch)
        {
            if (p is not JsonObject po || po[key] is not { } keyValue)
            {
                result.Add(p?.DeepClone());
                continue;
            }
            var idx = -1;
            for (var i = 0; i < result.Count; i++)
            {
                if (JsonNode.DeepEquals(result[i]?[key], keyValue))
                {
                    idx = i;
                    break;
                }
            }
            if (po["$patch"]?.GetValue<string>() == "delete")
            {
                if (idx >= 0)
                {
                    result.RemoveAt(idx);
                }
                continue;
            }
            if (idx >= 0)
            {
                result[idx] = StrategicMerge(result[idx]!.DeepClone(), po);
            }
            else
            {
                var add = (JsonObject)po.DeepClone();
                add.Remove("$patch");
                result.Add(add);
            }
        }
        return result;
    }
}
