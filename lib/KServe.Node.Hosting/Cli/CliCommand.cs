using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;

namespace KServe.Node.Hosting.Cli;

/// <summary>
/// One command of a daemon (the daemon itself, or one of its verbs): its positional arguments and its flags.
/// Flags come from options classes: property <c>FooBar</c> of the class bound to section <c>S</c> is the flag
/// <c>--foo-bar</c>, the environment variable <c>{PREFIX}_FOO_BAR</c> and the configuration key <c>S:FooBar</c>.
/// That one name rule holds for every daemon; help text is the property's <see cref="DescriptionAttribute"/>,
/// the default is the value a new options object holds, and values are checked against the property's type and
/// validation attributes while parsing, so a bad value is named before anything starts.
/// </summary>
public sealed class CliCommand
{
    private readonly List<CliFlag> _flags = [];

    /// <param name="verb">The verb (<c>standalone</c>), or null for the daemon's own command.</param>
    /// <param name="summary">One sentence on what the command does.</param>
    /// <param name="arguments">The positional arguments in the usage line, e.g. <c>URI DEST</c>; empty for none.</param>
    public CliCommand(string? verb, string summary, string arguments = "")
    {
        Verb = verb;
        Summary = summary;
        Arguments = arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    public string? Verb { get; }

    public string Summary { get; }

    /// <summary>Names of the positional arguments (all required).</summary>
    public IReadOnlyList<string> Arguments { get; }

    public IReadOnlyList<CliFlag> Flags => _flags;

    /// <summary>Text appended to the usage (notes, examples).</summary>
    public string? Notes { get; init; }

    /// <summary>
    /// Adds one flag per settable property of <typeparamref name="T"/> bound to <paramref name="section"/>;
    /// <paramref name="customize"/> adds aliases, marks required flags or leaves properties out.
    /// </summary>
    public CliCommand Options<T>(string section, Action<OptionsFlags>? customize = null) where T : class, new()
    {
        var defaults = new T();
        var added = new List<CliFlag>();
        foreach (var p in typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.SetMethod is not { IsPublic: true } || p.GetIndexParameters().Length > 0 || !CliValue.IsSupported(p.PropertyType))
            {
                continue;
            }
            added.Add(new CliFlag(CliNames.Kebab(p.Name), $"{section}:{p.Name}", p.GetCustomAttribute<DescriptionAttribute>()?.Description ?? "",
                p, p.GetValue(defaults)));
        }
        var custom = new OptionsFlags(added);
        customize?.Invoke(custom);
        foreach (var f in added.Where(f => !custom.Excluded.Contains(f.Property!.Name)))
        {
            Add(f);
        }
        return this;
    }

    /// <summary>Adds a flag that is read by the command itself (not bound to options), e.g. <c>--json</c>.</summary>
    public CliCommand Flag(string name, string help, bool isSwitch = false, string valueName = "VALUE")
    {
        Add(new CliFlag(name, null, help, null, null) { IsSwitchOverride = isSwitch, ValueNameOverride = valueName });
        return this;
    }

    private void Add(CliFlag flag)
    {
        if (flag.Help.Length == 0)
        {
            throw new InvalidOperationException($"flag --{flag.Name} has no help text (a [Description] on {flag.Key})");
        }
        if (_flags.Any(f => f.Names.Intersect(flag.Names).Any()))
        {
            throw new InvalidOperationException($"flag --{flag.Name} is declared twice in '{Verb}'");
        }
        _flags.Add(flag);
    }

    internal CliFlag? Find(string name) => _flags.FirstOrDefault(f => f.Names.Contains(name));
}

/// <summary>Adjusts the flags made from one options class.</summary>
public sealed class OptionsFlags
{
    private readonly List<CliFlag> _flags;

    internal OptionsFlags(List<CliFlag> flags) => _flags = flags;

    internal HashSet<string> Excluded { get; } = new(StringComparer.Ordinal);

    /// <summary>Other spellings of the property's flag (<c>--ctx-size</c>, <c>-c</c>): names with their dashes.</summary>
    public OptionsFlags Alias(string property, params string[] aliases)
    {
        Get(property).Aliases.AddRange(aliases);
        return this;
    }

    /// <summary>A switch that sets the (boolean) property to false, e.g. <c>--no-embeddings</c>.</summary>
    public OptionsFlags Negation(string property, string negation)
    {
        Get(property).Negations.Add(negation);
        return this;
    }

    public OptionsFlags Required(params string[] properties)
    {
        foreach (var p in properties)
        {
            Get(p).Required = true;
        }
        return this;
    }

    /// <summary>Leaves properties out: they are set by the program, not by the user.</summary>
    public OptionsFlags Without(params string[] properties)
    {
        foreach (var p in properties)
        {
            _ = Get(p);
            Excluded.Add(p);
        }
        return this;
    }

    /// <summary>The placeholder of the value in the usage (<c>DIR</c>, <c>URL</c>).</summary>
    public OptionsFlags ValueName(string property, string name)
    {
        Get(property).ValueNameOverride = name;
        return this;
    }

    private CliFlag Get(string property) =>
        _flags.FirstOrDefault(f => f.Property!.Name == property) ?? throw new InvalidOperationException($"no settable property {property}");
}

/// <summary>One flag: its names, configuration key, help, type and default.</summary>
public sealed class CliFlag
{
    internal CliFlag(string name, string? key, string help, PropertyInfo? property, object? defaultValue)
    {
        Name = name;
        Key = key;
        Help = help;
        Property = property;
        Default = defaultValue;
    }

    /// <summary>The flag without its dashes (<c>gc-grace</c>).</summary>
    public string Name { get; }

    /// <summary>The configuration key (<c>Download:GcGrace</c>), or null for a flag the command reads itself.</summary>
    public string? Key { get; }

    public string Help { get; }

    internal PropertyInfo? Property { get; }

    internal object? Default { get; }

    internal List<string> Aliases { get; } = [];

    internal List<string> Negations { get; } = [];

    public bool Required { get; internal set; }

    internal bool? IsSwitchOverride { get; init; }

    internal string? ValueNameOverride { get; set; }

    /// <summary>A switch takes no value (<c>--leader-elect</c>; <c>--leader-elect=false</c> also works).</summary>
    public bool IsSwitch => IsSwitchOverride ?? Property?.PropertyType == typeof(bool);

    public bool IsList => Property is not null && CliValue.ListElement(Property.PropertyType) is not null;

    /// <summary>Every spelling, dashes included.</summary>
    public IEnumerable<string> Names => new[] { "--" + Name }.Concat(Aliases).Concat(Negations);

    public string ValueName => ValueNameOverride ?? (Property is null ? "VALUE" : CliValue.Placeholder(Property));

    /// <summary>The environment variable for this flag under <paramref name="prefix"/>.</summary>
    public string EnvironmentVariable(string prefix) => $"{prefix}_{Name.ToUpperInvariant().Replace('-', '_')}";

    internal string DefaultText => Default switch
    {
        null => "",
        long or int when Property is not null && CliValue.Placeholder(Property) == "SIZE" => CliValue.FormatSize(Convert.ToInt64(Default, CultureInfo.InvariantCulture)),
        Enum e => CliNames.Kebab(e.ToString()),
        string s => s.Length == 0 ? "" : s,
        bool b => b ? "true" : "false",
        TimeSpan t => CliValue.FormatDuration(t),
        System.Collections.IEnumerable e => string.Join(",", e.Cast<object>()),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        var o => o.ToString() ?? "",
    };

    /// <summary>Checks one value and returns it in the form the configuration binder reads; throws naming the flag.</summary>
    internal string Check(string value, string source)
    {
        if (Property is null)
        {
            return value;
        }
        var type = CliValue.ListElement(Property.PropertyType) ?? Property.PropertyType;
        if (!CliValue.TryConvert(value, type, Property.Name, out var converted, out var expected))
        {
            throw new CliException($"{source} must be {expected}, got '{value}'");
        }
        if (CliValue.ListElement(Property.PropertyType) is null)
        {
            foreach (var a in Property.GetCustomAttributes<ValidationAttribute>())
            {
                if (a is RangeAttribute r && !a.IsValid(converted))
                {
                    throw new CliException($"{source} must be from {r.Minimum} to {r.Maximum}, got '{value}'");
                }
                if (a is not RequiredAttribute && !a.IsValid(converted))
                {
                    throw new CliException($"{source}: {a.FormatErrorMessage(Name)}, got '{value}'");
                }
            }
        }
        return CliValue.ToConfiguration(converted);
    }
}

/// <summary>A bad command line (or environment variable): one line naming the problem; the daemon exits 2.</summary>
public sealed class CliException(string message) : Exception(message)
{
    public CliException() : this("bad command line") { }

    public CliException(string message, Exception inner) : this(message + ": " + inner.Message) { }
}

/// <summary>A start-up problem the operator can fix (no cluster, a port in use, a missing file): one line, exit 2.</summary>
public class StartupException : Exception
{
    public StartupException() : this("start-up failed") { }

    public StartupException(string message) : base(message) { }

    public StartupException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The name rule between properties and flags.</summary>
public static class CliNames
{
    /// <summary>The flag of an options property: <c>ContextSize</c> → <c>--context-size</c>.</summary>
    public static string Flag(string property) => "--" + Kebab(property);

    /// <summary><c>GcGrace</c> → <c>gc-grace</c>; <c>HttpPort</c> → <c>http-port</c>; <c>MetricsURL</c> → <c>metrics-url</c>.</summary>
    public static string Kebab(string pascal)
    {
        var sb = new System.Text.StringBuilder();
        for (var i = 0; i < pascal.Length; i++)
        {
            var c = pascal[i];
            var boundary = i > 0 && char.IsUpper(c)
                && (char.IsLower(pascal[i - 1]) || char.IsDigit(pascal[i - 1]) || (i + 1 < pascal.Length && char.IsLower(pascal[i + 1])));
            if (boundary)
            {
                sb.Append('-');
            }
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}
