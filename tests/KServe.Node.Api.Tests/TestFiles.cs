using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.Api.Tests;

/// <summary>Locates the example files (copied next to the test binary) and the repository's manifests.</summary>
internal static class TestFiles
{
    public static string Example(string name) =>
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Examples", name));

    public static string RepoRoot => KServe.Node.TestKit.RepoPaths.Root;

    public static string CrdDirectory => Path.Combine(RepoRoot, "daemonset", "crds");
}

/// <summary>Compares JSON trees structurally (object key order ignored) and names the first difference.</summary>
internal static class JsonAssert
{
    public static void Equal(JsonNode? expected, JsonNode? actual)
    {
        var diff = FirstDifference(expected, actual, "$");
        Assert.True(diff is null, $"JSON trees differ at {diff}\nexpected: {expected?.ToJsonString()}\nactual:   {actual?.ToJsonString()}");
    }

    public static string? FirstDifference(JsonNode? a, JsonNode? b, string path)
    {
        switch (a)
        {
            case null:
                return b is null ? null : $"{path}: expected null, got {b.ToJsonString()}";
            case JsonObject oa:
                if (b is not JsonObject ob)
                {
                    return $"{path}: expected an object, got {b?.ToJsonString() ?? "null"}";
                }

                foreach (var (key, value) in oa)
                {
                    if (!ob.TryGetPropertyValue(key, out var other))
                    {
                        return $"{path}.{key}: missing (expected {value?.ToJsonString() ?? "null"})";
                    }

                    var d = FirstDifference(value, other, $"{path}.{key}");
                    if (d is not null)
                    {
                        return d;
                    }
                }

                foreach (var (key, value) in ob)
                {
                    if (!oa.ContainsKey(key))
                    {
                        return $"{path}.{key}: unexpected field {value?.ToJsonString() ?? "null"}";
                    }
                }

                return null;
            case JsonArray aa:
                if (b is not JsonArray ab)
                {
                    return $"{path}: expected an array, got {b?.ToJsonString() ?? "null"}";
                }

                if (aa.Count != ab.Count)
                {
                    return $"{path}: expected {aa.Count} items, got {ab.Count}";
                }

                for (var i = 0; i < aa.Count; i++)
                {
                    var d = FirstDifference(aa[i], ab[i], $"{path}[{i}]");
                    if (d is not null)
                    {
                        return d;
                    }
                }

                return null;
            default:
                if (b is not JsonValue || !JsonNode.DeepEquals(a, b))
                {
                    // Numbers compare by value (1.50 == 1.5).
                    if (a.GetValueKind() == JsonValueKind.Number && b?.GetValueKind() == JsonValueKind.Number
                        && a.GetValue<decimal>() == b.GetValue<decimal>())
                    {
                        return null;
                    }

                    return $"{path}: expected {a.ToJsonString()}, got {b?.ToJsonString() ?? "null"}";
                }

                return null;
        }
    }
}
