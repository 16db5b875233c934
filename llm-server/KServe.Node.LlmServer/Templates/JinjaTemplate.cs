using System.Globalization;
using System.Text.Json;

namespace KServe.Node.LlmServer.Templates;

/// <summary>
/// A parsed Jinja template (the subset that Hugging Face chat templates use), rendered with the semantics of
/// the Hub's own renderer so that a model's <c>tokenizer.chat_template</c> gives the prompt its authors tested.
/// Parse once, render many times; rendering is thread-safe.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<Node> _program;

    private JinjaTemplate(List<Node> program) => _program = program;

    /// <summary>Parses a template; throws <see cref="JinjaException"/> naming the problem.</summary>
    public static JinjaTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new JinjaTemplate(JinjaParser.Parse(JinjaLexer.Tokenize(source)));
    }

    /// <summary>Renders with the properties of a JSON object as variables.</summary>
    public string Render(JsonElement context, TimeProvider? time = null)
    {
        if (context.ValueKind != JsonValueKind.Object)
        {
            throw new ArgumentException("The context must be a JSON object.", nameof(context));
        }
        var vars = new Dictionary<string, JinjaValue>(StringComparer.Ordinal);
        foreach (var p in context.EnumerateObject())
        {
            vars[p.Name] = JinjaValue.FromJson(p.Value);
        }
        return Render(vars, time);
    }

    /// <summary>Renders with the given variables (on top of the globals every chat template may use).</summary>
    public string Render(IReadOnlyDictionary<string, JinjaValue> variables, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var globals = new JinjaScope(null);
        AddGlobals(globals, time ?? TimeProvider.System);
        var scope = new JinjaScope(globals);
        foreach (var (k, v) in variables)
        {
            scope.Set(k, v);
        }
        try
        {
            return new JinjaInterpreter().Render(_program, scope);
        }
        catch (BreakSignal)
        {
            throw new JinjaException("break outside a loop");
        }
        catch (ContinueSignal)
        {
            throw new JinjaException("continue outside a loop");
        }
    }

    private static void AddGlobals(JinjaScope scope, TimeProvider time)
    {
        scope.Set("false", JinjaBool.False);
        scope.Set("true", JinjaBool.True);
        scope.Set("none", JinjaNull.Instance);
        scope.Set("False", JinjaBool.False);
        scope.Set("True", JinjaBool.True);
        scope.Set("None", JinjaNull.Instance);
        scope.Set("raise_exception", new JinjaFunction((args, _) =>
            throw new JinjaException(args.Count > 0 ? args[0].JsString() : "raise_exception called")));
        scope.Set("range", new JinjaFunction((args, _) => Range(args)));
        scope.Set("strftime_now", new JinjaFunction((args, _) =>
            new JinjaString(Strftime(time.GetLocalNow(), args.Count > 0 ? args[0].JsString() : ""))));
        scope.Set("namespace", new JinjaFunction((args, _) => Namespace(args)));
    }

    private static JinjaArray Range(List<JinjaValue> args)
    {
        static double Arg(JinjaValue v) => v switch
        {
            JinjaInteger i => i.Value,
            JinjaFloat f => f.Value,
            _ => throw new JinjaException("range() arguments must be numbers"),
        };
        double start = 0, stop, step = 1;
        if (args.Count == 1)
        {
            stop = Arg(args[0]);
        }
        else if (args.Count >= 2)
        {
            start = Arg(args[0]);
            stop = Arg(args[1]);
            if (args.Count > 2)
            {
                step = Arg(args[2]);
            }
        }
        else
        {
            throw new JinjaException("range() needs at least one argument");
        }
        if (step == 0)
        {
            throw new JinjaException("range() step must not be zero");
        }
        var result = new List<JinjaValue>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (result.Count >= 1_000_000)
            {
                throw new JinjaException("range() is too large");
            }
            result.Add(JinjaValue.FromNumber(i));
        }
        return new JinjaArray(result);
    }

    private static JinjaNamespace Namespace(List<JinjaValue> args)
    {
        var positional = args.ToList();
        JinjaKwargs? kwargs = null;
        if (positional.Count > 0 && positional[^1] is JinjaKwargs kw)
        {
            kwargs = kw;
            positional.RemoveAt(positional.Count - 1);
        }
        if (positional.Count > 1)
        {
            throw new JinjaException($"namespace expected at most 1 argument, got {positional.Count}");
        }
        var ns = new JinjaNamespace();
        if (positional.Count == 1)
        {
            switch (positional[0])
            {
                case JinjaObject o:
                    foreach (var (k, v) in o.Items)
                    {
                        ns.Items[k is JinjaString key ? key.Value : throw new JinjaException("namespace keys must be strings")] = v;
                    }
                    break;
                case JinjaArray a:
                    foreach (var pair in a.Items)
                    {
                        var kv = pair switch
                        {
                            JinjaArray p => p.Items,
                            JinjaString s => JinjaInterpreter.CodePoints(s.Value).Select(c => (JinjaValue)new JinjaString(c)).ToList(),
                            _ => null,
                        };
                        if (kv is not { Count: 2 })
                        {
                            throw new JinjaException("namespace expected an object or an iterable of [key, value] pairs");
                        }
                        if (kv[0] is not JinjaString key)
                        {
                            throw new JinjaException("namespace keys must be strings");
                        }
                        ns.Items[key.Value] = kv[1];
                    }
                    break;
                default:
                    throw new JinjaException($"'{positional[0].TypeName}' object is not iterable");
            }
        }
        if (kwargs is not null)
        {
            foreach (var (k, v) in kwargs.Items)
            {
                ns.Items[((JinjaString)k).Value] = v;
            }
        }
        return ns;
    }

    internal static string Strftime(DateTimeOffset date, string format)
    {
        var sb = new System.Text.StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] == '%' && i + 1 < format.Length && "YmdbBHM%".Contains(format[i + 1], StringComparison.Ordinal))
            {
                var c = format[++i];
                sb.Append(c switch
                {
                    'Y' => date.Year.ToString(CultureInfo.InvariantCulture),
                    'm' => date.Month.ToString("00", CultureInfo.InvariantCulture),
                    'd' => date.Day.ToString("00", CultureInfo.InvariantCulture),
                    'b' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedMonthName(date.Month),
                    'B' => CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(date.Month),
                    'H' => date.Hour.ToString("00", CultureInfo.InvariantCulture),
                    'M' => date.Minute.ToString("00", CultureInfo.InvariantCulture),
                    _ => "%",
                });
            }
            else
            {
                sb.Append(format[i]);
            }
        }
        return sb.ToString();
    }
}
