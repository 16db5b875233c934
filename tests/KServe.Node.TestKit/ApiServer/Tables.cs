using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>
/// meta.k8s.io/v1 Table answers for `kubectl get` (Kubernetes docs "API Concepts", "Receiving resources
/// as Tables"): Name, the CRD's additionalPrinterColumns (JSONPath), Age.
/// </summary>
internal static class Tables
{
    public static bool Wanted(HttpContext ctx) =>
        ctx.Request.Headers.Accept.ToString().Contains("as=Table", StringComparison.Ordinal);

    public static byte[] Build(TestApiServerState state, ResourceType type, IReadOnlyList<StoredObject> items, long rv, string? includeObject, bool headers = true)
    {
        var columns = new JsonArray
        {
            Column("Name", "string", "name", "Name must be unique within a namespace.", 0),
        };
        var printers = new List<(string JsonPath, string Type)>();
        var hasAge = false;
        if (type.PrinterColumns is { Count: > 0 } pcs)
        {
            foreach (var pc in pcs)
            {
                var colType = pc?["type"]?.GetValue<string>() ?? "string";
                columns.Add(Column(pc?["name"]?.GetValue<string>() ?? "", colType, pc?["format"]?.GetValue<string>() ?? "",
                    pc?["description"]?.GetValue<string>() ?? "", pc?["priority"]?.GetValue<int>() ?? 0));
                printers.Add((pc?["jsonPath"]?.GetValue<string>() ?? "", colType));
                hasAge |= pc?["name"]?.GetValue<string>() == "Age";
            }
        }
        if (!hasAge)
        {
            columns.Add(Column("Age", "date", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0));
        }
        var now = state.Options.TimeProvider.GetUtcNow();
        var rows = new JsonArray();
        foreach (var item in items)
        {
            var obj = item.Parse();
            var cells = new JsonArray { item.Name };
            foreach (var (path, colType) in printers)
            {
                var v = Evaluate(obj, path);
                cells.Add(colType == "date" && v is JsonValue dv && dv.TryGetValue<string>(out var ds) ? Age(ds, now) : v?.DeepClone());
            }
            if (!hasAge)
            {
                cells.Add(Age(obj["metadata"]?["creationTimestamp"]?.GetValue<string>(), now));
            }
            JsonObject rowObject = includeObject == "Object"
                ? obj
                : new JsonObject
                {
                    ["kind"] = "PartialObjectMetadata",
                    ["apiVersion"] = "meta.k8s.io/v1",
                    ["metadata"] = obj["metadata"]!.DeepClone(),
                };
            if (includeObject == "None")
            {
                rows.Add(new JsonObject { ["cells"] = cells });
            }
            else
            {
                rows.Add(new JsonObject { ["cells"] = cells, ["object"] = rowObject });
            }
        }
        var table = new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = new JsonObject { ["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture) },
            ["columnDefinitions"] = headers ? columns : new JsonArray(),
            ["rows"] = rows,
        };
        return Encoding.UTF8.GetBytes(table.ToJsonString());
    }

    private static JsonObject Column(string name, string type, string format, string description, int priority) => new()
    {
        ["name"] = name,
        ["type"] = type,
        ["format"] = format,
        ["description"] = description,
        ["priority"] = priority,
    };

    /// <summary>kubectl's short duration form (k8s.io/apimachinery/pkg/util/duration.HumanDuration).</summary>
    private static string Age(string? timestamp, DateTimeOffset now)
    {
        if (timestamp is null || !DateTimeOffset.TryParse(timestamp, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
        {
            return "<unknown>";
        }
        var d = now - t;
        if (d < TimeSpan.Zero)
        {
            d = TimeSpan.Zero;
        }
        var s = (long)d.TotalSeconds;
        return s switch
        {
            < 120 => $"{s}s",
            < 600 => s % 60 == 0 ? $"{s / 60}m" : $"{s / 60}m{s % 60}s",
            < 3 * 3600 => $"{s / 60}m",
            < 8 * 3600 => (s / 60) % 60 == 0 ? $"{s / 3600}h" : $"{s / 3600}h{(s / 60) % 60}m",
            < 48 * 3600 => $"{s / 3600}h",
            < 8 * 86400 => (s / 3600) % 24 == 0 ? $"{s / 86400}d" : $"{s / 86400}d{(s / 3600) % 24}h",
            < 2 * 365 * 86400 => $"{s / 86400}d",
            _ => $"{s / (365 * 86400)}y",
        };
    }

    /// <summary>The JSONPath subset printer columns use: .a.b, .a[0].b, .a[?(@.k=="v")].b.</summary>
    public static JsonNode? Evaluate(JsonNode? node, string path)
    {
        var p = path.Trim();
        if (p.StartsWith('{') && p.EndsWith('}'))
        {
            p = p[1..^1];
        }
        var i = 0;
        while (i < p.Length && node is not null)
        {
            if (p[i] == '.')
            {
                i++;
                var start = i;
                while (i < p.Length && p[i] != '.' && p[i] != '[')
                {
                    i++;
                }
                var key = p[start..i];
                if (key.Length == 0)
                {
                    continue;
                }
                node = node is JsonObject o && o.TryGetPropertyValue(key, out var c) ? c : null;
            }
            else if (p[i] == '[')
            {
                var close = p.IndexOf(']', i);
                if (close < 0)
                {
                    return null;
                }
                var inner = p[(i + 1)..close];
                i = close + 1;
                if (node is not JsonArray a)
                {
                    return null;
                }
                if (int.TryParse(inner, CultureInfo.InvariantCulture, out var idx))
                {
                    node = idx >= 0 && idx < a.Count ? a[idx] : null;
                }
                else if (inner.StartsWith("?(@.", StringComparison.Ordinal) && inner.EndsWith(')'))
                {
                    var cond = inner[4..^1];
                    var eq = cond.IndexOf("==", StringComparison.Ordinal);
                    if (eq < 0)
                    {
                        return null;
                    }
                    var field = cond[..eq].Trim();
                    var want = cond[(eq + 2)..].Trim().Trim('"', '\'');
                    node = a.FirstOrDefault(e => e?[field] is JsonValue v && v.ToString() == want);
                }
                else
                {
                    return null;
                }
            }
            else
            {
                return null;
            }
        }
        return node;
    }
}
