namespace KServe.Node.TestKit.ApiServer;

/// <summary>
/// Label and field selectors with the apiserver's syntax (k8s.io/apimachinery/pkg/labels/selector.go,
/// Kubernetes docs "Labels and Selectors" and "Field Selectors"): =, ==, !=, in, notin, exists, !exists
/// for labels; =, ==, != for fields.
/// </summary>
internal static class Selectors
{
    public static Func<StoredObject, bool>? Parse(string? labelSelector, string? fieldSelector, ResourceType type)
    {
        var preds = new List<Func<StoredObject, bool>>();
        if (!string.IsNullOrWhiteSpace(labelSelector))
        {
            foreach (var req in SplitTopLevel(labelSelector))
            {
                preds.Add(ParseLabelRequirement(req.Trim()));
            }
        }
        if (!string.IsNullOrWhiteSpace(fieldSelector))
        {
            foreach (var req in fieldSelector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                preds.Add(ParseFieldRequirement(req, type));
            }
        }
        if (preds.Count == 0)
        {
            return null;
        }
        var arr = preds.ToArray();
        return o =>
        {
            foreach (var p in arr)
            {
                if (!p(o))
                {
                    return false;
                }
            }
            return true;
        };
    }

    private static List<string> SplitTopLevel(string s)
    {
        var parts = new List<string>();
        var depth = 0;
        var start = 0;
        for (var i = 0; i < s.Length; i++)
        {
            switch (s[i])
            {
                case '(': depth++; break;
                case ')': depth--; break;
                case ',' when depth == 0:
                    parts.Add(s[start..i]);
                    start = i + 1;
                    break;
            }
        }
        parts.Add(s[start..]);
        return parts.Where(p => p.Trim().Length > 0).ToList();
    }

    private static Func<StoredObject, bool> ParseLabelRequirement(string req)
    {
        int i;
        if ((i = req.IndexOf("!=", StringComparison.Ordinal)) > 0)
        {
            var (k, v) = (req[..i].Trim(), req[(i + 2)..].Trim());
            return o => !o.Labels.TryGetValue(k, out var x) || x != v;
        }
        if ((i = req.IndexOf("==", StringComparison.Ordinal)) > 0)
        {
            var (k, v) = (req[..i].Trim(), req[(i + 2)..].Trim());
            return o => o.Labels.TryGetValue(k, out var x) && x == v;
        }
        if ((i = req.IndexOf('=', StringComparison.Ordinal)) > 0)
        {
            var (k, v) = (req[..i].Trim(), req[(i + 1)..].Trim());
            return o => o.Labels.TryGetValue(k, out var x) && x == v;
        }
        var sp = req.IndexOf(' ', StringComparison.Ordinal);
        if (sp > 0)
        {
            var key = req[..sp].Trim();
            var rest = req[sp..].Trim();
            var notIn = rest.StartsWith("notin", StringComparison.Ordinal);
            var isIn = !notIn && rest.StartsWith("in", StringComparison.Ordinal);
            var open = rest.IndexOf('(', StringComparison.Ordinal);
            var close = rest.LastIndexOf(')');
            if ((notIn || isIn) && open >= 0 && close > open)
            {
                var set = rest[(open + 1)..close].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
                return isIn
                    ? o => o.Labels.TryGetValue(key, out var x) && set.Contains(x)
                    : o => !o.Labels.TryGetValue(key, out var x) || !set.Contains(x);
            }
            throw ApiError.BadRequest($"unable to parse requirement: found '{rest}', expected: in, notin, =, ==, !=, gt, lt");
        }
        if (req.StartsWith('!'))
        {
            var k = req[1..].Trim();
            return o => !o.Labels.ContainsKey(k);
        }
        if (req.Length == 0 || req.Any(char.IsWhiteSpace))
        {
            throw ApiError.BadRequest($"unable to parse requirement: {req}");
        }
        return o => o.Labels.ContainsKey(req);
    }

    private static Func<StoredObject, bool> ParseFieldRequirement(string req, ResourceType type)
    {
        bool negate;
        string key, value;
        int i;
        if ((i = req.IndexOf("!=", StringComparison.Ordinal)) > 0)
        {
            (key, value, negate) = (req[..i], req[(i + 2)..], true);
        }
        else if ((i = req.IndexOf("==", StringComparison.Ordinal)) > 0)
        {
            (key, value, negate) = (req[..i], req[(i + 2)..], false);
        }
        else if ((i = req.IndexOf('=', StringComparison.Ordinal)) > 0)
        {
            (key, value, negate) = (req[..i], req[(i + 1)..], false);
        }
        else
        {
            throw ApiError.BadRequest($"invalid selector: '{req}'; can't understand '{req}'");
        }
        key = key.Trim();
        value = value.Trim();
        if (key is not ("metadata.name" or "metadata.namespace") && !type.SelectableFields.Contains(key))
        {
            // The apiserver's wording for a field label a kind does not support.
            throw ApiError.BadRequest($"field label not supported: {key}");
        }
        return negate
            ? o => !o.Fields.TryGetValue(key, out var x) ? value.Length != 0 : x != value
            : o => o.Fields.TryGetValue(key, out var x) ? x == value : value.Length == 0;
    }
}
