namespace KServe.Node.Agent.Standalone;

/// <summary>Kubernetes quantities for sizes (<c>500Gi</c>, <c>64M</c>, <c>1e9</c>, plain bytes).</summary>
internal static class Quantity
{
    private static readonly (string Suffix, decimal Factor)[] Suffixes =
    [
        ("Ki", 1024m), ("Mi", 1024m * 1024), ("Gi", 1024m * 1024 * 1024), ("Ti", 1024m * 1024 * 1024 * 1024),
        ("Pi", 1024m * 1024 * 1024 * 1024 * 1024), ("Ei", 1024m * 1024 * 1024 * 1024 * 1024 * 1024),
        ("k", 1e3m), ("M", 1e6m), ("G", 1e9m), ("T", 1e12m), ("P", 1e15m), ("E", 1e18m), ("m", 0.001m),
    ];

    public static bool TryParseBytes(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        var s = text.Trim();
        var factor = 1m;
        foreach (var (suffix, f) in Suffixes)
        {
            if (s.EndsWith(suffix, StringComparison.Ordinal))
            {
                factor = f;
                s = s[..^suffix.Length];
                break;
            }
        }
        if (!decimal.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var n) || n < 0)
        {
            return false;
        }
        var value = Math.Ceiling(n * factor);
        if (value > long.MaxValue)
        {
            return false;
        }
        bytes = (long)value;
        return true;
    }
}
