using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;

namespace KServe.Node.Hosting.Cli;

/// <summary>
/// Values of flags: the types options classes use, with Kubernetes quantities for byte sizes (<c>500Gi</c>) and Go
/// durations for time spans (<c>10m</c>, <c>1h30m</c>, <c>250ms</c>), as KServe's and kubelet's flags take them.
/// </summary>
internal static partial class CliValue
{
    private static readonly (string Suffix, decimal Factor)[] SizeSuffixes =
    [
        ("Ki", 1024m), ("Mi", 1024m * 1024), ("Gi", 1024m * 1024 * 1024), ("Ti", 1024m * 1024 * 1024 * 1024),
        ("Pi", 1024m * 1024 * 1024 * 1024 * 1024), ("Ei", 1024m * 1024 * 1024 * 1024 * 1024 * 1024),
        ("k", 1e3m), ("M", 1e6m), ("G", 1e9m), ("T", 1e12m), ("P", 1e15m), ("E", 1e18m),
    ];

    public static bool IsSupported(Type t)
    {
        var e = ListElement(t) ?? t;
        e = Nullable.GetUnderlyingType(e) ?? e;
        return e == typeof(string) || e == typeof(int) || e == typeof(long) || e == typeof(double) || e == typeof(bool)
            || e == typeof(TimeSpan) || e.IsEnum;
    }

    /// <summary>The element type of a list of strings (repeatable flags), else null.</summary>
    public static Type? ListElement(Type t) =>
        t != typeof(string) && t.IsGenericType && t.GetGenericArguments() is [var e] && typeof(System.Collections.IEnumerable).IsAssignableFrom(t) ? e : null;

    public static string Placeholder(PropertyInfo p)
    {
        var t = ListElement(p.PropertyType) ?? p.PropertyType;
        t = Nullable.GetUnderlyingType(t) ?? t;
        return t == typeof(int) || t == typeof(long) ? (IsSize(p.Name) ? "SIZE" : "N")
            : t == typeof(double) ? "X"
            : t == typeof(TimeSpan) ? "DURATION"
            : t.IsEnum ? string.Join("|", Enum.GetNames(t).Select(CliNames.Kebab))
            : "VALUE";
    }

    private static bool IsSize(string property) => property.EndsWith("Bytes", StringComparison.Ordinal);

    public static bool TryConvert(string text, Type type, string property, out object? value, out string expected)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        value = null;
        expected = "";
        var s = text.Trim();
        if (t == typeof(string))
        {
            value = text;
            return true;
        }
        if (Nullable.GetUnderlyingType(type) is not null && s.Length == 0)
        {
            return true;
        }
        if (t == typeof(bool))
        {
            expected = "true or false";
            if (bool.TryParse(s, out var b))
            {
                value = b;
                return true;
            }
            return false;
        }
        if (t == typeof(int) || t == typeof(long))
        {
            expected = IsSize(property) ? "a size such as 64Mi, 500Gi or a number of bytes" : "an integer";
            if (!TryParseNumber(s, IsSize(property), out var n))
            {
                return false;
            }
            if (t == typeof(int))
            {
                if (n is < int.MinValue or > int.MaxValue)
                {
                    return false;
                }
                value = (int)n;
            }
            else
            {
                value = n;
            }
            return true;
        }
        if (t == typeof(double))
        {
            expected = "a number";
            if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
            {
                value = d;
                return true;
            }
            return false;
        }
        if (t == typeof(TimeSpan))
        {
            expected = "a duration such as 90s, 10m or 1h30m";
            if (TryParseDuration(s, out var span))
            {
                value = span;
                return true;
            }
            return false;
        }
        if (t.IsEnum)
        {
            expected = "one of " + string.Join(", ", Enum.GetNames(t).Select(CliNames.Kebab));
            var name = s.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal);
            var match = Enum.GetNames(t).FirstOrDefault(n => string.Equals(n.Replace("_", "", StringComparison.Ordinal), name, StringComparison.OrdinalIgnoreCase));
            if (match is not null)
            {
                value = Enum.Parse(t, match);
                return true;
            }
            return false;
        }
        expected = "a supported value";
        return false;
    }

    public static string ToConfiguration(object? value) => value switch
    {
        null => "",
        bool b => b ? "true" : "false",
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        Enum e => e.ToString(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        var o => o.ToString() ?? "",
    };

    private static bool TryParseNumber(string s, bool size, out long n)
    {
        n = 0;
        if (s.Length == 0)
        {
            return false;
        }
        var factor = 1m;
        if (size)
        {
            foreach (var (suffix, f) in SizeSuffixes)
            {
                if (s.EndsWith(suffix, StringComparison.Ordinal))
                {
                    factor = f;
                    s = s[..^suffix.Length];
                    break;
                }
            }
        }
        if (!decimal.TryParse(s, NumberStyles.AllowLeadingSign | (size ? NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent : NumberStyles.None),
                CultureInfo.InvariantCulture, out var d))
        {
            return false;
        }
        var v = Math.Ceiling(d * factor);
        if (v is > long.MaxValue or < long.MinValue)
        {
            return false;
        }
        n = (long)v;
        return true;
    }

    /// <summary>Go's <c>time.ParseDuration</c> forms (<c>1h30m</c>, <c>90s</c>, <c>250ms</c>, <c>0</c>), or .NET's <c>hh:mm:ss</c>.</summary>
    public static bool TryParseDuration(string s, out TimeSpan span)
    {
        span = TimeSpan.Zero;
        if (s == "0")
        {
            return true;
        }
        if (s.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out span) && span >= TimeSpan.Zero;
        }
        var m = DurationRegex().Match(s);
        if (!m.Success || s.Length == 0)
        {
            return false;
        }
        double ms = 0;
        foreach (Capture c in m.Groups["part"].Captures)
        {
            var part = PartRegex().Match(c.Value);
            var n = double.Parse(part.Groups[1].Value, CultureInfo.InvariantCulture);
            ms += part.Groups[2].Value switch
            {
                "h" => n * 3_600_000,
                "m" => n * 60_000,
                "s" => n * 1000,
                "ms" => n,
                "us" or "µs" => n / 1000,
                _ => n / 1_000_000,
            };
        }
        if (ms > TimeSpan.MaxValue.TotalMilliseconds)
        {
            return false;
        }
        span = TimeSpan.FromMilliseconds(ms);
        return true;
    }

    /// <summary>Bytes as the shortest exact binary quantity (<c>33554432</c> → <c>32Mi</c>).</summary>
    public static string FormatSize(long bytes)
    {
        foreach (var (suffix, factor) in SizeSuffixes.Take(6).Reverse())
        {
            if (bytes != 0 && bytes % (long)factor == 0)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{bytes / (long)factor}{suffix}");
            }
        }
        return bytes.ToString(CultureInfo.InvariantCulture);
    }

    public static string FormatDuration(TimeSpan t)
    {
        if (t == TimeSpan.Zero)
        {
            return "0s";
        }
        var sb = new System.Text.StringBuilder();
        if (t.TotalHours >= 1)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{(long)t.TotalHours}h");
        }
        if (t.Minutes > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{t.Minutes}m");
        }
        var seconds = t.Seconds + (t.Milliseconds / 1000.0);
        if (seconds > 0)
        {
            sb.Append(seconds < 1 && sb.Length == 0
                ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalMilliseconds:0.###}ms")
                : string.Create(CultureInfo.InvariantCulture, $"{seconds:0.###}s"));
        }
        return sb.ToString();
    }

    [GeneratedRegex(@"^(?<part>[0-9]+(\.[0-9]+)?(h|ms|m|s|us|µs|ns))+$")]
    private static partial Regex DurationRegex();

    [GeneratedRegex(@"^([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|µs|ns)$")]
    private static partial Regex PartRegex();
}
