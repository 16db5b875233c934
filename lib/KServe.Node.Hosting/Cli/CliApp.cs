using System.Collections;
using System.Globalization;
using System.Text;

namespace KServe.Node.Hosting.Cli;

/// <summary>
/// A daemon's command line: its commands (its own, and verbs such as <c>standalone</c>), parsed the same way in
/// every daemon. <c>--name value</c>, <c>--name=value</c>, switches alone or <c>=true|false</c>, repeatable list
/// flags, <c>--Section:Key=value</c> for any configuration key, and <c>--help</c> / <c>-h</c> / <c>help [VERB]</c>.
/// Environment variables <c>{Prefix}_{FLAG}</c> fill what the command line leaves out.
/// </summary>
public sealed class CliApp
{
    private readonly List<CliCommand> _commands = [];

    /// <param name="program">The program's name in messages and usage (<c>node-agent</c>).</param>
    /// <param name="environmentPrefix">Prefix of the environment variables (<c>NODE_AGENT</c>).</param>
    public CliApp(string program, string environmentPrefix)
    {
        Program = program;
        EnvironmentPrefix = environmentPrefix;
    }

    public string Program { get; }

    public string EnvironmentPrefix { get; }

    public IReadOnlyList<CliCommand> Commands => _commands;

    public CliApp Add(CliCommand command)
    {
        _commands.Add(command);
        return this;
    }

    /// <summary>Parses <paramref name="args"/> (and the environment); throws <see cref="CliException"/> naming the problem.</summary>
    public CliResult Parse(IReadOnlyList<string> args, IDictionary? environment = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var i = 0;
        var command = _commands.FirstOrDefault(c => c.Verb is null);
        // Help is answered before anything else is checked, whatever else the line holds.
        var help = args.Any(a => a is "--help" or "-h");
        if (args.Count > 0 && args[0] == "help")
        {
            help = true;
            i = 1;
        }
        if (i < args.Count && _commands.FirstOrDefault(c => c.Verb is not null && c.Verb == args[i]) is { } verb)
        {
            command = verb;
            i++;
        }
        if (command is null)
        {
            if (help || args.Count == 0 || args.Any(a => a is "--help" or "-h"))
            {
                return new CliResult(this, null, true, [], new Dictionary<string, string?>(), new Dictionary<string, string>());
            }
            throw new CliException($"unknown command '{args[0]}'; commands: {string.Join(", ", _commands.Select(c => c.Verb))} (see --help)");
        }
        if (help)
        {
            return new CliResult(this, command, true, [], new Dictionary<string, string?>(), new Dictionary<string, string>());
        }
        var config = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var lists = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var positional = new List<string>();
        var fromArgs = new HashSet<string>(StringComparer.Ordinal);
        for (; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                positional.AddRange(args.Skip(i + 1));
                break;
            }
            if (!arg.StartsWith('-') || arg == "-")
            {
                positional.Add(arg);
                continue;
            }
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var name = eq > 0 ? arg[..eq] : arg;
            string? inline = eq > 0 ? arg[(eq + 1)..] : null;
            if (name.StartsWith("--", StringComparison.Ordinal) && name.Contains(':', StringComparison.Ordinal))
            {
                // A configuration key given directly (--Section:Key=value); checked when the options bind.
                config[name[2..]] = inline ?? Next(args, ref i, name);
                continue;
            }
            var flag = command.Find(name) ?? throw new CliException(
                $"unknown flag {name} for '{Title(command)}' (see '{Title(command)} --help')");
            fromArgs.Add(flag.Name);
            string value;
            if (flag.Negations.Contains(name))
            {
                value = inline is null ? "false" : flag.Check(inline, name) == "true" ? "false" : "true";
            }
            else if (flag.IsSwitch)
            {
                value = inline ?? "true";
            }
            else
            {
                value = inline ?? Next(args, ref i, name, flag);
            }
            value = flag.Check(value, name);
            if (flag.IsList)
            {
                (lists.TryGetValue(flag.Name, out var l) ? l : lists[flag.Name] = []).Add(value);
            }
            else
            {
                values[flag.Name] = value;
            }
        }
        environment ??= Environment.GetEnvironmentVariables();
        foreach (var flag in command.Flags.Where(f => !fromArgs.Contains(f.Name)))
        {
            var env = flag.EnvironmentVariable(EnvironmentPrefix);
            if (environment[env] is not string text || text.Length == 0)
            {
                continue;
            }
            if (flag.IsList)
            {
                lists[flag.Name] = [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(v => flag.Check(v, env))];
            }
            else
            {
                values[flag.Name] = flag.Check(flag.IsSwitch && text is "1" ? "true" : text, env);
            }
        }
        foreach (var (name, list) in lists)
        {
            values[name] = string.Join(",", list);
            var key = command.Find("--" + name)!.Key;
            if (key is not null)
            {
                for (var n = 0; n < list.Count; n++)
                {
                    config[$"{key}:{n.ToString(CultureInfo.InvariantCulture)}"] = list[n];
                }
            }
        }
        foreach (var flag in command.Flags)
        {
            if (flag.Key is not null && !flag.IsList && values.TryGetValue(flag.Name, out var v))
            {
                config[flag.Key] = v;
            }
            if (flag.Required && !values.ContainsKey(flag.Name) && (flag.Key is null || !config.ContainsKey(flag.Key)))
            {
                throw new CliException($"missing --{flag.Name} {flag.ValueName}: {flag.Help} (see '{Title(command)} --help')");
            }
        }
        if (positional.Count != command.Arguments.Count)
        {
            throw positional.Count > command.Arguments.Count
                ? new CliException($"unexpected argument '{positional[command.Arguments.Count]}' for '{Title(command)}' (see '{Title(command)} --help')")
                : new CliException($"'{Title(command)}' needs {string.Join(" ", command.Arguments)}; missing {string.Join(" ", command.Arguments.Skip(positional.Count))} (see --help)");
        }
        return new CliResult(this, command, false, positional, config, values);
    }

    private static string Next(IReadOnlyList<string> args, ref int i, string name, CliFlag? flag = null)
    {
        if (i + 1 >= args.Count)
        {
            throw new CliException($"{name} needs a value{(flag is null ? "" : $" ({flag.ValueName}: {flag.Help})")}");
        }
        return args[++i];
    }

    internal string Title(CliCommand c) => c.Verb is null ? Program : $"{Program} {c.Verb}";

    /// <summary>The usage of one command, or of the whole program when <paramref name="command"/> is null.</summary>
    public string Usage(CliCommand? command)
    {
        var sb = new StringBuilder();
        if (command is null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"usage: {Program} COMMAND [flags]\n\ncommands:\n");
            foreach (var c in _commands)
            {
                sb.Append(CultureInfo.InvariantCulture, $"  {(c.Verb ?? "(none)"),-12} {c.Summary}\n");
            }
            sb.Append(CultureInfo.InvariantCulture, $"\n'{Program} COMMAND --help' lists the flags of each.\n");
            return sb.ToString();
        }
        var required = string.Concat(command.Flags.Where(f => f.Required).Select(f => $" --{f.Name} {f.ValueName}"));
        var args = string.Concat(command.Arguments.Select(a => " " + a));
        sb.Append(CultureInfo.InvariantCulture, $"usage: {Title(command)}{args}{required} [flags]\n\n{command.Summary}\n");
        var others = _commands.Where(c => c != command).ToList();
        if (command.Verb is null && others.Count > 0)
        {
            sb.Append("\ncommands:\n");
            foreach (var c in others)
            {
                sb.Append(CultureInfo.InvariantCulture, $"  {c.Verb,-12} {c.Summary}\n");
            }
        }
        sb.Append("\nflags:\n");
        var rows = command.Flags.Select(f => (Left: FlagSpelling(f), f)).ToList();
        var width = Math.Min(30, rows.Max(r => r.Left.Length) + 2);
        foreach (var (left, f) in rows)
        {
            var help = f.Help;
            var extra = new List<string>();
            if (f.Required)
            {
                extra.Add("required");
            }
            else if (f.DefaultText.Length > 0 && !help.Contains("(default", StringComparison.Ordinal))
            {
                extra.Add("default " + f.DefaultText);
            }
            if (f.IsList)
            {
                extra.Add("repeatable");
            }
            if (extra.Count > 0)
            {
                help += $" ({string.Join("; ", extra)})";
            }
            sb.Append(left.Length + 1 < width
                ? $"  {left.PadRight(width)}{help}\n"
                : $"  {left}\n  {"".PadRight(width)}{help}\n");
            sb.Append(CultureInfo.InvariantCulture, $"  {"".PadRight(width)}env {f.EnvironmentVariable(EnvironmentPrefix)}{(f.Key is null ? "" : $", key {f.Key}")}\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"  {"-h, --help".PadRight(width)}this text\n");
        sb.Append(
            $"\nEvery flag is also an environment variable ({EnvironmentPrefix}_ and the flag in capitals, - as _; a list is comma-separated)\n"
            + "and a configuration key (appsettings.json, or --Key:Path=value on the command line). The command line wins over\n"
            + "the environment, which wins over appsettings.json. Sizes take Kubernetes quantities (64Mi, 500Gi), durations\n"
            + "Go's forms (90s, 10m, 1h30m).\n");
        if (command.Notes is { } notes)
        {
            sb.Append('\n').Append(notes.TrimEnd()).Append('\n');
        }
        return sb.ToString();
    }

    private static string FlagSpelling(CliFlag f)
    {
        var names = string.Join(", ", f.Aliases.Where(a => !a.StartsWith("--", StringComparison.Ordinal))
            .Concat(["--" + f.Name]).Concat(f.Aliases.Where(a => a.StartsWith("--", StringComparison.Ordinal))).Concat(f.Negations));
        return f.IsSwitch ? names : $"{names} {f.ValueName}";
    }
}

/// <summary>A parsed command line.</summary>
public sealed class CliResult
{
    private readonly IReadOnlyDictionary<string, string> _values;

    internal CliResult(CliApp app, CliCommand? command, bool help, IReadOnlyList<string> positional,
        IReadOnlyDictionary<string, string?> configuration, IReadOnlyDictionary<string, string> values)
    {
        App = app;
        Command = command;
        HelpRequested = help;
        Positional = positional;
        Configuration = configuration;
        _values = values;
    }

    public CliApp App { get; }

    /// <summary>The command; null when only the program's help was asked for.</summary>
    public CliCommand? Command { get; }

    public string? Verb => Command?.Verb;

    /// <summary><c>--help</c>, <c>-h</c> or <c>help</c> was given: print <see cref="Usage"/>, exit 0, touch nothing.</summary>
    public bool HelpRequested { get; }

    public IReadOnlyList<string> Positional { get; }

    /// <summary>Configuration keys and values from the flags and the environment, for the host's configuration.</summary>
    public IReadOnlyDictionary<string, string?> Configuration { get; }

    public string Usage => App.Usage(Command);

    /// <summary>The value of a flag (by name without dashes), from the command line or the environment.</summary>
    public string? Get(string flag) => _values.GetValueOrDefault(flag);

    public bool IsSet(string flag) => _values.ContainsKey(flag);

    /// <summary>A switch's value (false when not given).</summary>
    public bool Switch(string flag) => _values.TryGetValue(flag, out var v) && v == "true";
}
