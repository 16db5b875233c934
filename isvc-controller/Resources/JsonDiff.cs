using System.Text.Json.Nodes;
using k8s;

namespace KServe.Node.IsvcController.Resources;

/// <summary>
/// "Patch only real diffs": an existing child needs a write only when some field this controller sets differs.
/// Fields the API server or other controllers add (defaults, status, clusterIP, replicas under an HPA) are not
/// in the desired object and so never count as a difference.
/// </summary>
internal static class JsonDiff
{
    /// <summary>True when every field of <paramref name="desired"/> has the same value in <paramref name="actual"/>.</summary>
    /// <remarks>
    /// Objects compare key by key (extra keys in actual are fine); lists compare element by element with the same
    /// length (a list is owned as a whole, so an extra element is a difference); scalars compare by value, with
    /// numbers compared numerically and a number equal to its string form (an IntOrString written either way).
    /// </remarks>
    public static bool Contains(JsonNode? actual, JsonNode? desired)
    {
        switch (desired)
        {
            case null:
                return actual is null;
            case JsonObject d:
                if (actual is not JsonObject a)
                {
                    return d.Count == 0 && actual is null;
                }

                foreach (var (key, value) in d)
                {
                    a.TryGetPropertyValue(key, out var av);
                    if (value is null)
                    {
                        if (av is not null)
                        {
                            return false;
                        }

                        continue;
                    }

                    // An empty map or list desired equals an absent one (omitempty on the server side).
                    if (av is null && value is JsonObject { Count: 0 } or JsonArray { Count: 0 })
                    {
                        continue;
                    }

                    if (!Contains(av, value))
                    {
                        return false;
                    }
                }

                return true;
            case JsonArray d:
                if (actual is not JsonArray arr || arr.Count != d.Count)
                {
                    return false;
                }

                for (var i = 0; i < d.Count; i++)
                {
                    if (!Contains(arr[i], d[i]))
                    {
                        return false;
                    }
                }

                return true;
            case JsonValue d:
                return actual is JsonValue av2 && ScalarEquals(av2, d);
            default:
                return false;
        }
    }

    /// <summary>Serialises a Kubernetes model object to a JSON tree the way the API server receives it.</summary>
    public static JsonNode ToNode(object obj) => JsonNode.Parse(KubernetesJson.Serialize(obj))!;

    /// <summary>A deep copy through the wire format.</summary>
    public static T Clone<T>(T obj)
        where T : class => KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(obj));

    private static bool ScalarEquals(JsonValue a, JsonValue d)
    {
        if (a.TryGetValue(out decimal an) && d.TryGetValue(out decimal dn))
        {
            return an == dn;
        }

        var astr = a.TryGetValue(out string? s1) ? s1 : a.ToJsonString();
        var dstr = d.TryGetValue(out string? s2) ? s2 : d.ToJsonString();
        return string.Equals(astr, dstr, StringComparison.Ordinal);
    }
}
