namespace KServe.Node.Agent.Cli;

/// <summary>
/// The agent's command line (the house contract): no verb = Kubernetes mode; <c>standalone</c>;
/// <c>download URI DEST</c>; <c>list</c>. Options are <c>--name value</c>; a bad one is named in the error.
/// </summary>
internal sealed class CommandLine
{
    private readonly Dictionary<string, string> _options = new(StringComparer.Ordinal);

    private CommandLine(string? verb, List<string> positional, Dictionary<string, string> options, List<string> passThrough)
    {
        Verb = verb;
        Positional = positional;
        _options = options;
        PassThrough = passThrough;
    }

    public string? Verb { get; }
    public IReadOnlyList<string> Positional { get; }

    /// <summary>Arguments meant for the host's configuration (<c>--Section:Key=value</c>).</summary>
    public IReadOnlyList<string> PassThrough { get; }

    public static readonly string[] Verbs = ["standalone", "download", "list", "help"];

    public static CommandLine Parse(string[] args, IReadOnlySet<string> flags)
    {
        string? verb = null;
        var positional = new List<string>();
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        var passThrough = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                if (a.Contains(':', StringComparison.Ordinal))
                {
                    passThrough.Add(a);
                    continue;
                }
                var eq = a.IndexOf('=', StringComparison.Ordinal);
                var name = eq > 0 ? a[2..eq] : a[2..];
                if (flags.Contains(name) && eq < 0)
                {
                    options[name] = "true";
                    continue;
                }
                if (eq > 0)
                {
                    options[name] = a[(eq + 1)..];
                }
                else if (i + 1 < args.Length)
                {
                    options[name] = args[++i];
                }
                else
                {
                    throw new UsageException($"option --{name} needs a value");
                }
            }
            else if (verb is null && positional.Count == 0 && Verbs.Contains(a))
            {
                verb = a;
            }
            else
            {
                positional.Add(a);
            }
        }
        return new CommandLine(verb, positional, options, passThrough);
    }

    public string? Get(string name) => _options.GetValueOrDefault(name);

    public bool Has(string name) => _options.ContainsKey(name);

    public string Require(string name) => Get(name) ?? throw new UsageException($"missing required option --{name}");

    public void OnlyAllow(params string[] names)
    {
        foreach (var k in _options.Keys)
        {
            if (!names.Contains(k))
            {
                throw new UsageException($"unknown option --{k} for '{Verb ?? "(kubernetes mode)"}'; allowed: {string.Join(", ", names.Select(n => "--" + n))}");
            }
        }
    }

    public int? GetInt(string name, int min, int max)
    {
        if (Get(name) is not { } v)
        {
            return null;
        }
        return int.TryParse(v, out var n) && n >= min && n <= max ? n : throw new UsageException($"--{name} must be an integer from {min} to {max}, got '{v}'");
    }

    public long? GetSize(string name)
    {
        if (Get(name) is not { } v)
        {
            return null;
        }
        return Quantity.TryParseBytes(v, out var b) ? b : throw new UsageException($"--{name} must be a size such as 500Gi or 64Mi, got '{v}'");
    }

    public const string Usage = """
        usage:
          node-agent                                  Kubernetes mode (NODE_NAME from the downward API)
          node-agent standalone --config-dir DIR --root DIR [--port N] [--storage-limit SIZE]
          node-agent download URI DEST [--allow GLOBS] [--ignore GLOBS] [--streams N] [--chunk-size SIZE]
          node-agent list [--root DIR | --url URL]
        URI schemes: s3://bucket/prefix, gs://bucket/prefix, hf://owner/repo[:revision], https://..., http://...
        """;
}

internal sealed class UsageException(string message) : Exception(message)
{
    public UsageException() : this("bad usage") { }

    public UsageException(string message, Exception inner) : this(message + ": " + inner.Message) { }
}

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
