using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace KServe.Node.LlmServer.Templates;

internal static partial class StringMethods
{
    [GeneratedRegex(@"\b\w", RegexOptions.ECMAScript)]
    private static partial Regex WordStart();

    internal static string JsTrim(string s) => JsTrimEnd(JsTrimStart(s));

    internal static string JsTrimStart(string s)
    {
        var i = 0;
        while (i < s.Length && JinjaLexer.IsSpace(s[i]))
        {
            i++;
        }
        return s[i..];
    }

    internal static string JsTrimEnd(string s)
    {
        var e = s.Length;
        while (e > 0 && JinjaLexer.IsSpace(s[e - 1]))
        {
            e--;
        }
        return s[..e];
    }

    internal static string Title(string s) => WordStart().Replace(s, m => m.Value.ToUpperInvariant());

    internal static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    private static JinjaFunction Fn(Func<List<JinjaValue>, JinjaValue> f) => new((args, _) => f(args));

    internal static JinjaValue? Get(JinjaString str, string name)
    {
        var s = str.Value;
        return name switch
        {
            "upper" => Fn(_ => new JinjaString(s.ToUpperInvariant())),
            "lower" => Fn(_ => new JinjaString(s.ToLowerInvariant())),
            "strip" => Fn(_ => new JinjaString(JsTrim(s))),
            "title" => Fn(_ => new JinjaString(Title(s))),
            "capitalize" => Fn(_ => new JinjaString(Capitalize(s))),
            "length" => new JinjaInteger(s.Length),
            "rstrip" => Fn(_ => new JinjaString(JsTrimEnd(s))),
            "lstrip" => Fn(_ => new JinjaString(JsTrimStart(s))),
            "startswith" => Fn(args => Affix(s, args, "startswith", (a, b) => a.StartsWith(b, StringComparison.Ordinal))),
            "endswith" => Fn(args => Affix(s, args, "endswith", (a, b) => a.EndsWith(b, StringComparison.Ordinal))),
            "split" => Fn(args => Split(s, args)),
            "replace" => Fn(args => Replace(s, args)),
            "format" => Fn(args => Format(s, args)),
            _ => null,
        };
    }

    private static JinjaBool Affix(string s, List<JinjaValue> args, string name, Func<string, string, bool> test)
    {
        if (args.Count == 0)
        {
            throw new JinjaException($"{name}() requires at least one argument");
        }
        switch (args[0])
        {
            case JinjaString p:
                return JinjaBool.Of(test(s, p.Value));
            case JinjaArray a:
                foreach (var item in a.Items)
                {
                    if (item is not JinjaString ps)
                    {
                        throw new JinjaException($"{name}() tuple elements must be strings");
                    }
                    if (test(s, ps.Value))
                    {
                        return JinjaBool.True;
                    }
                }
                return JinjaBool.False;
            default:
                throw new JinjaException($"{name}() argument must be a string or tuple of strings");
        }
    }

    private static JinjaArray Split(string s, List<JinjaValue> args)
    {
        var sep = args.Count > 0 ? args[0] : JinjaNull.Instance;
        if (sep is not (JinjaString or JinjaNull))
        {
            throw new JinjaException("sep argument must be a string or null");
        }
        var maxsplitValue = args.Count > 1 ? args[1] : new JinjaInteger(-1);
        if (maxsplitValue is not JinjaInteger maxsplitInt)
        {
            throw new JinjaException("maxsplit argument must be a number");
        }
        var maxsplit = maxsplitInt.Value;
        var result = new List<string>();
        if (sep is JinjaNull)
        {
            var text = JsTrimStart(s);
            var i = 0;
            while (i < text.Length)
            {
                while (i < text.Length && JinjaLexer.IsSpace(text[i]))
                {
                    i++;
                }
                if (i >= text.Length)
                {
                    break;
                }
                var start = i;
                while (i < text.Length && !JinjaLexer.IsSpace(text[i]))
                {
                    i++;
                }
                if (maxsplit != -1 && result.Count >= maxsplit)
                {
                    result.Add(text[start..]);
                    break;
                }
                result.Add(text[start..i]);
            }
        }
        else
        {
            var sepValue = ((JinjaString)sep).Value;
            if (sepValue.Length == 0)
            {
                throw new JinjaException("empty separator");
            }
            result.AddRange(s.Split(sepValue));
            if (maxsplit != -1 && result.Count > maxsplit)
            {
                var n = (int)maxsplit;
                var rest = string.Join(sepValue, result.Skip(n));
                result.RemoveRange(n, result.Count - n);
                result.Add(rest);
            }
        }
        return new JinjaArray(result.Select(p => (JinjaValue)new JinjaString(p)).ToList());
    }

    /// <summary>
    /// Python's <c>str.format</c> for plain fields: <c>{}</c>, <c>{0}</c> or <c>{name}</c>, optionally with <c>!s</c> or
    /// <c>!r</c>, and <c>{{</c> and <c>}}</c> for braces. Format specs and attribute or index lookups are refused.
    /// </summary>
    private static JinjaString Format(string s, List<JinjaValue> args)
    {
        var positional = args.ToList();
        var keyword = positional.Count > 0 && positional[^1] is JinjaKwargs kw ? kw : null;
        if (keyword is not null)
        {
            positional.RemoveAt(positional.Count - 1);
        }
        var sb = new StringBuilder();
        var next = 0;
        bool? automatic = null;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c is '{' or '}' && i + 1 < s.Length && s[i + 1] == c)
            {
                sb.Append(c);
                i++;
                continue;
            }
            if (c == '}')
            {
                throw new JinjaException("Single '}' encountered in format string");
            }
            if (c != '{')
            {
                sb.Append(c);
                continue;
            }
            var end = s.IndexOf('}', i + 1);
            if (end < 0)
            {
                throw new JinjaException("Single '{' encountered in format string");
            }
            var field = s[(i + 1)..end];
            i = end;
            var repr = false;
            if (field.IndexOf('!', StringComparison.Ordinal) is var bang and >= 0)
            {
                repr = field[(bang + 1)..] switch
                {
                    "s" => false,
                    "r" => true,
                    _ => throw new JinjaException($"Unsupported conversion in format field '{{{field}}}'"),
                };
                field = field[..bang];
            }
            if (field.IndexOfAny([':', '.', '[', '{']) >= 0)
            {
                throw new JinjaException($"Unsupported format field '{{{field}}}'");
            }
            JinjaValue value;
            if (field.All(char.IsAsciiDigit))
            {
                var manual = field.Length > 0;
                if (automatic == manual)
                {
                    throw new JinjaException(manual
                        ? "cannot switch from automatic field numbering to manual field specification"
                        : "cannot switch from manual field specification to automatic field numbering");
                }
                automatic = !manual;
                var index = !manual ? next++ : int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : int.MaxValue;
                value = index < positional.Count ? positional[index] : throw new JinjaException($"Replacement index {index} out of range for positional args tuple");
            }
            else
            {
                value = keyword is not null && keyword.Items.TryGetValue(new JinjaString(field), out var v) ? v : throw new JinjaException($"KeyError: '{field}'");
            }
            sb.Append(repr ? JinjaValue.PythonRepr(value) : JinjaValue.PythonStr(value));
        }
        return new JinjaString(sb.ToString());
    }

    internal static JinjaString Replace(string s, List<JinjaValue> args)
    {
        if (args.Count < 2)
        {
            throw new JinjaException("replace() requires at least two arguments");
        }
        if (args[0] is not JinjaString oldValue || args[1] is not JinjaString newValue)
        {
            throw new JinjaException("replace() arguments must be strings");
        }
        JinjaValue count = JinjaNull.Instance;
        if (args.Count > 2)
        {
            count = args[2] is JinjaKwargs kw ? (kw.Items.TryGetValue(new JinjaString("count"), out var c) ? c : JinjaNull.Instance) : args[2];
        }
        if (count is not (JinjaInteger or JinjaNull))
        {
            throw new JinjaException("replace() count argument must be a number or null");
        }
        var remaining = count is JinjaInteger ci ? (ci.Value < 0 ? double.PositiveInfinity : ci.Value) : double.PositiveInfinity;
        if (remaining == 0)
        {
            return new JinjaString(s);
        }
        var sb = new StringBuilder();
        if (oldValue.Value.Length == 0)
        {
            // An empty pattern matches before every code point and at the end.
            var i = 0;
            while (i <= s.Length)
            {
                if (remaining > 0)
                {
                    sb.Append(newValue.Value);
                    remaining--;
                }
                if (i == s.Length)
                {
                    break;
                }
                var step = char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
                sb.Append(s, i, step);
                i += step;
            }
            return new JinjaString(sb.ToString());
        }
        var pos = 0;
        while (true)
        {
            var idx = s.IndexOf(oldValue.Value, pos, StringComparison.Ordinal);
            if (idx < 0 || remaining <= 0)
            {
                break;
            }
            sb.Append(s, pos, idx - pos).Append(newValue.Value);
            remaining--;
            pos = idx + oldValue.Value.Length;
        }
        sb.Append(s, pos, s.Length - pos);
        return new JinjaString(sb.ToString());
    }
}

internal static class ObjectMethods
{
    internal static JinjaValue? Get(JinjaObject obj, string name) => name switch
    {
        "get" => new JinjaFunction((args, _) =>
        {
            var key = args.Count > 0 ? args[0] : JinjaUndefined.Instance;
            if (!PythonKeyComparer.IsHashable(key))
            {
                throw new JinjaException($"Object key must be hashable: got {key.TypeName}");
            }
            return obj.Items.TryGetValue(key, out var v) ? v : args.Count > 1 ? args[1] : JinjaNull.Instance;
        }),
        "items" => new JinjaFunction((_, _) => obj.Pairs()),
        "keys" => new JinjaFunction((_, _) => obj.Keys()),
        "values" => new JinjaFunction((_, _) => obj.Values()),
        "dictsort" => new JinjaFunction((args, _) => DictSort(obj, args)),
        _ => null,
    };

    private static JinjaArray DictSort(JinjaObject obj, List<JinjaValue> args)
    {
        var kwargs = new OrderedDictionary<JinjaValue, JinjaValue>(PythonKeyComparer.Instance);
        var positional = new List<JinjaValue>();
        foreach (var a in args)
        {
            if (a is JinjaKwargs kw)
            {
                kwargs = kw.Items;
            }
            else
            {
                positional.Add(a);
            }
        }
        JinjaValue Arg(int i, string name, JinjaValue dflt) =>
            i < positional.Count ? positional[i] : kwargs.TryGetValue(new JinjaString(name), out var v) ? v : dflt;
        if (Arg(0, "case_sensitive", JinjaBool.False) is not JinjaBool caseSensitive)
        {
            throw new JinjaException("case_sensitive must be a boolean");
        }
        if (Arg(1, "by", new JinjaString("key")) is not JinjaString by)
        {
            throw new JinjaException("by must be a string");
        }
        if (by.Value is not ("key" or "value"))
        {
            throw new JinjaException("by must be either 'key' or 'value'");
        }
        if (Arg(2, "reverse", JinjaBool.False) is not JinjaBool reverse)
        {
            throw new JinjaException("reverse must be a boolean");
        }
        var index = by.Value == "key" ? 0 : 1;
        var items = obj.Pairs().Items.Cast<JinjaArray>().ToList();
        var sorted = StableSort(items, (a, b) =>
        {
            var r = JinjaInterpreter.Compare(a.Items[index], b.Items[index], caseSensitive.Value);
            return reverse.Value ? -r : r;
        });
        return new JinjaArray(sorted.Cast<JinjaValue>().ToList());
    }

    internal static List<T> StableSort<T>(List<T> items, Comparison<T> comparison)
    {
        // JavaScript's Array.prototype.sort is stable; List.Sort is not.
        return items.Select((item, i) => (item, i))
            .OrderBy(x => x, Comparer<(T item, int i)>.Create((a, b) =>
            {
                var r = comparison(a.item, b.item);
                return r != 0 ? r : a.i.CompareTo(b.i);
            }))
            .Select(x => x.item)
            .ToList();
    }
}
