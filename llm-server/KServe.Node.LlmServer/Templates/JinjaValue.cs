using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LlmServer.Templates;

/// <summary>
/// A value inside a template. The semantics follow the Hub's chat-template renderer (@huggingface/jinja),
/// whose loose JavaScript-flavoured rules are what real chat templates were tested against.
/// </summary>
public abstract class JinjaValue
{
    internal abstract string TypeName { get; }

    internal virtual bool IsTruthy => true;

    /// <summary>How the value prints inside <c>{{ }}</c>.</summary>
    public override string ToString() => JsString();

    /// <summary>The JavaScript <c>String(value)</c> of the underlying primitive (used by <c>~</c>, <c>+</c> and <c>join</c>).</summary>
    internal abstract string JsString();

    internal virtual JinjaValue? Builtin(string name) => null;

    internal static JinjaValue FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => FromJsonObject(e),
        JsonValueKind.Array => new JinjaArray(e.EnumerateArray().Select(FromJson).ToList()),
        JsonValueKind.String => new JinjaString(e.GetString()!),
        JsonValueKind.Number => FromNumber(e.GetDouble()),
        JsonValueKind.True => JinjaBool.True,
        JsonValueKind.False => JinjaBool.False,
        JsonValueKind.Null => JinjaNull.Instance,
        _ => JinjaUndefined.Instance,
    };

    /// <summary>A JSON node as a template value (null is JSON null).</summary>
    internal static JinjaValue FromNode(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return JinjaNull.Instance;
            case JsonObject o:
                {
                    var result = new JinjaObject();
                    foreach (var (k, v) in o)
                    {
                        result.Items[new JinjaString(k)] = FromNode(v);
                    }
                    return result;
                }
            case JsonArray a:
                return new JinjaArray(a.Select(FromNode).ToList());
            default:
                var value = node.AsValue();
                if (value.TryGetValue<JsonElement>(out var element))
                {
                    return FromJson(element);
                }
                return value.GetValueKind() switch
                {
                    JsonValueKind.String => new JinjaString(value.GetValue<string>()),
                    JsonValueKind.True => JinjaBool.True,
                    JsonValueKind.False => JinjaBool.False,
                    JsonValueKind.Number => FromNumber(double.Parse(value.ToJsonString(), CultureInfo.InvariantCulture)),
                    _ => JinjaNull.Instance,
                };
        }
    }

    internal static JinjaValue FromNumber(double d) =>
        double.IsFinite(d) && Math.Floor(d) == d ? new JinjaInteger(d) : new JinjaFloat(d);

    private static JinjaObject FromJsonObject(JsonElement e)
    {
        var o = new JinjaObject();
        foreach (var p in e.EnumerateObject())
        {
            o.Items[new JinjaString(p.Name)] = FromJson(p.Value);
        }
        return o;
    }

    /// <summary>Formats a number the way JavaScript's <c>Number.prototype.toString</c> does.</summary>
    internal static string JsNumber(double d)
    {
        if (double.IsNaN(d))
        {
            return "NaN";
        }
        if (double.IsInfinity(d))
        {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0)
        {
            return "0";
        }
        // Shortest round-trip digits and exponent, then JavaScript's layout rules (ECMA-262 Number::toString).
        var (digits, exp) = ShortestDigits(d);
        var k = digits.Length;
        var n = exp;
        var sb = new StringBuilder();
        if (d < 0)
        {
            sb.Append('-');
        }
        if (k <= n && n <= 21)
        {
            sb.Append(digits).Append('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            sb.Append(digits, 0, n).Append('.').Append(digits, n, k - n);
        }
        else if (-6 < n && n <= 0)
        {
            sb.Append("0.").Append('0', -n).Append(digits);
        }
        else
        {
            var e = n - 1;
            sb.Append(digits[0]);
            if (k > 1)
            {
                sb.Append('.').Append(digits, 1, k - 1);
            }
            sb.Append('e').Append(e >= 0 ? "+" : "-").Append(Math.Abs(e).ToString(CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>The shortest digits that round-trip |d| (not zero), and where the decimal point goes: |d| = 0.digits × 10^exp.</summary>
    private static (string Digits, int Exp) ShortestDigits(double d)
    {
        var s = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        var ePos = s.IndexOfAny(['E', 'e']);
        var mantissa = ePos >= 0 ? s[..ePos] : s;
        var e10 = ePos >= 0 ? int.Parse(s[(ePos + 1)..], CultureInfo.InvariantCulture) : 0;
        var dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        var intPart = dot >= 0 ? mantissa[..dot] : mantissa;
        var frac = dot >= 0 ? mantissa[(dot + 1)..] : "";
        var all = (intPart + frac).TrimStart('0');
        var leadingZeros = (intPart + frac).Length - all.Length;
        var digits = all.TrimEnd('0');
        return (digits.Length == 0 ? "0" : digits, intPart.Length + e10 - leadingZeros);
    }

    /// <summary>Python's <c>repr</c> of a float: <c>1.0</c>, <c>0.0001</c>, <c>1e-05</c>, <c>1e+16</c>, <c>inf</c>, <c>nan</c>.</summary>
    internal static string PythonFloat(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }
        var sign = double.IsNegative(d) ? "-" : "";
        if (double.IsInfinity(d))
        {
            return sign + "inf";
        }
        if (d == 0)
        {
            return sign + "0.0";
        }
        var (digits, n) = ShortestDigits(d);
        if (-4 < n && n <= 16)
        {
            return sign + (n <= 0 ? "0." + new string('0', -n) + digits
                : n >= digits.Length ? digits + new string('0', n - digits.Length) + ".0"
                : digits[..n] + "." + digits[n..]);
        }
        var e = n - 1;
        return sign + digits[0] + (digits.Length > 1 ? "." + digits[1..] : "") + (e < 0 ? "e-" : "e+")
            + Math.Abs(e).ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Python's <c>str(value)</c>, what jinja2's <c>string</c> filter and <c>str.format</c> give: a string is itself,
    /// undefined is empty, anything else its <see cref="PythonRepr"/>.
    /// </summary>
    internal static string PythonStr(JinjaValue v) => v switch
    {
        JinjaString s => s.Value,
        JinjaUndefined => "",
        _ => PythonRepr(v),
    };

    /// <summary>Python's <c>repr(value)</c>: <c>'text'</c>, <c>True</c>, <c>None</c>, <c>2</c>, <c>1.0</c>, <c>[1, 'a']</c>, <c>(1,)</c>, <c>{'a': 1}</c>.</summary>
    internal static string PythonRepr(JinjaValue v)
    {
        var sb = new StringBuilder();
        WriteRepr(sb, v);
        return sb.ToString();
    }

    private static void WriteRepr(StringBuilder sb, JinjaValue v)
    {
        void Items(IEnumerable<JinjaValue> items)
        {
            var first = true;
            foreach (var item in items)
            {
                sb.Append(first ? "" : ", ");
                first = false;
                WriteRepr(sb, item);
            }
        }
        void Dict(IEnumerable<(JinjaValue Key, JinjaValue Value)> entries)
        {
            sb.Append('{');
            var first = true;
            foreach (var (key, value) in entries)
            {
                sb.Append(first ? "" : ", ");
                first = false;
                WriteRepr(sb, key);
                sb.Append(": ");
                WriteRepr(sb, value);
            }
            sb.Append('}');
        }
        switch (v)
        {
            case JinjaString s:
                PythonQuote(sb, s.Value);
                return;
            case JinjaBool b:
                sb.Append(b.Value ? "True" : "False");
                return;
            case JinjaNull:
                sb.Append("None");
                return;
            case JinjaUndefined:
                sb.Append("Undefined");
                return;
            case JinjaInteger i:
                sb.Append(double.IsFinite(i.Value) ? new BigInteger(i.Value).ToString(CultureInfo.InvariantCulture) : PythonFloat(i.Value));
                return;
            case JinjaFloat f:
                sb.Append(PythonFloat(f.Value));
                return;
            case JinjaTuple t:
                sb.Append('(');
                Items(t.Items);
                sb.Append(t.Items.Count == 1 ? ",)" : ")");
                return;
            case JinjaArray a:
                sb.Append('[');
                Items(a.Items);
                sb.Append(']');
                return;
            case JinjaObject o:
                Dict(o.Items.Select(kv => (kv.Key, kv.Value)));
                return;
            case JinjaNamespace n:
                sb.Append("<Namespace ");
                Dict(n.Items.Select(kv => ((JinjaValue)new JinjaString(kv.Key), kv.Value)));
                sb.Append('>');
                return;
            default:
                throw new JinjaException($"Cannot convert {v.TypeName} to a string");
        }
    }

    /// <summary>
    /// Python's <c>repr</c> of a string: in single quotes unless it holds a single quote and no double quote, with
    /// backslash escapes for the quote, backslash, control and other unprintable characters.
    /// </summary>
    private static void PythonQuote(StringBuilder sb, string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        sb.Append(quote);
        for (var i = 0; i < s.Length; i++)
        {
            var start = i;
            int c = s[i];
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                c = char.ConvertToUtf32(s[i], s[++i]);
            }
            if (c == quote || c == '\\')
            {
                sb.Append('\\').Append((char)c);
            }
            else if (c is '\t' or '\n' or '\r')
            {
                sb.Append(c switch { '\t' => "\\t", '\n' => "\\n", _ => "\\r" });
            }
            else if (c < 0x20 || c == 0x7f)
            {
                sb.Append("\\x").Append(c.ToString("x2", CultureInfo.InvariantCulture));
            }
            else if (c < 0x7f || IsPythonPrintable(c))
            {
                sb.Append(s, start, i + 1 - start);
            }
            else
            {
                sb.Append(c <= 0xff ? "\\x" : c <= 0xffff ? "\\u" : "\\U")
                    .Append(c.ToString(c <= 0xff ? "x2" : c <= 0xffff ? "x4" : "x8", CultureInfo.InvariantCulture));
            }
        }
        sb.Append(quote);
    }

    /// <summary>Python's <c>str.isprintable</c> of one code point: not a control, format, surrogate, private, unassigned or separator (space aside).</summary>
    private static bool IsPythonPrintable(int codePoint) => CharUnicodeInfo.GetUnicodeCategory(codePoint) is not (UnicodeCategory.Control
        or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned
        or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator);

    /// <summary>JavaScript's <c>JSON.stringify</c> of a string.</summary>
    internal static void JsonQuote(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else if (char.IsSurrogate(c) && !(char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                        && !(char.IsLowSurrogate(c) && i > 0 && char.IsHighSurrogate(s[i - 1])))
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else if (ensureAscii && c >= 0x7f)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        sb.Append('"');
    }

    internal sealed record JsonOptions(int? Indent, bool EnsureAscii, string? ItemSeparator, string? KeySeparator, bool SortKeys);

    internal static readonly JsonOptions DefaultJson = new(null, false, null, null, false);

    internal string ToJson(JsonOptions options, bool undefinedToNull = true)
    {
        var sb = new StringBuilder();
        WriteJson(sb, this, options, 0, undefinedToNull);
        return sb.ToString();
    }

    private static void WriteJson(StringBuilder sb, JinjaValue v, JsonOptions o, int depth, bool undefinedToNull)
    {
        var indent = o.Indent is > 0 ? o.Indent.Value : 0;
        var itemSep = o.ItemSeparator ?? (indent > 0 ? "," : ", ");
        var keySep = o.KeySeparator ?? ": ";
        switch (v)
        {
            case JinjaNull:
                sb.Append("null");
                return;
            case JinjaUndefined:
                sb.Append(undefinedToNull ? "null" : "undefined");
                return;
            case JinjaInteger i:
                sb.Append(double.IsFinite(i.Value) ? JsNumber(i.Value) : "null");
                return;
            case JinjaFloat f:
                sb.Append(double.IsFinite(f.Value) ? JsNumber(f.Value) : "null");
                return;
            case JinjaBool b:
                sb.Append(b.Value ? "true" : "false");
                return;
            case JinjaString s:
                JsonQuote(sb, s.Value, o.EnsureAscii);
                return;
            case JinjaArray a when a is not JinjaTuple:
                {
                    var basePad = "\n" + new string(' ', indent * depth);
                    var childPad = basePad + new string(' ', indent);
                    if (indent > 0 && a.Items.Count > 0)
                    {
                        sb.Append('[').Append(childPad);
                        for (var i = 0; i < a.Items.Count; i++)
                        {
                            if (i > 0)
                            {
                                sb.Append(itemSep).Append(childPad);
                            }
                            WriteJson(sb, a.Items[i], o, depth + 1, undefinedToNull);
                        }
                        sb.Append(basePad).Append(']');
                    }
                    else
                    {
                        sb.Append('[');
                        for (var i = 0; i < a.Items.Count; i++)
                        {
                            if (i > 0)
                            {
                                sb.Append(itemSep);
                            }
                            WriteJson(sb, a.Items[i], o, depth + 1, undefinedToNull);
                        }
                        sb.Append(']');
                    }
                    return;
                }
            case JinjaObject or JinjaNamespace when v is not JinjaKwargs:
                {
                    var entries = v is JinjaObject obj
                        ? obj.Items.Select(kv => (Key: JsonKey(kv.Key), kv.Key, kv.Value))
                        : ((JinjaNamespace)v).Items.Select(kv => (Key: kv.Key, Original: (JinjaValue)new JinjaString(kv.Key), kv.Value));
                    if (o.SortKeys)
                    {
                        // Python's json.dumps sorts the keys themselves (numbers as numbers), then writes them as strings.
                        entries = entries.OrderBy(e => e.Item2, Comparer<JinjaValue>.Create((a, b) => a is JinjaString x && b is JinjaString y
                            ? StringComparer.InvariantCulture.Compare(x.Value, y.Value)
                            : JinjaInterpreter.Compare(a, b, caseSensitive: true)));
                    }
                    var basePad = "\n" + new string(' ', indent * depth);
                    var childPad = basePad + new string(' ', indent);
                    sb.Append('{');
                    var first = true;
                    foreach (var (key, _, value) in entries)
                    {
                        if (!first)
                        {
                            sb.Append(itemSep);
                        }
                        first = false;
                        if (indent > 0)
                        {
                            sb.Append(childPad);
                        }
                        JsonQuote(sb, key, o.EnsureAscii);
                        sb.Append(keySep);
                        WriteJson(sb, value, o, depth + 1, undefinedToNull);
                    }
                    if (indent > 0 && !first)
                    {
                        sb.Append(basePad);
                    }
                    sb.Append('}');
                    return;
                }
            default:
                throw new JinjaException($"Cannot convert to JSON: {v.TypeName}");
        }
    }

    /// <summary>A dict key as Python's json.dumps writes it: a string as is, a number, boolean or none as its JSON text.</summary>
    private static string JsonKey(JinjaValue key) => key switch
    {
        JinjaString s => s.Value,
        JinjaBool b => b.Value ? "true" : "false",
        JinjaNull => "null",
        JinjaInteger or JinjaFloat => PythonRepr(key),
        _ => throw new JinjaException($"keys must be str, int, float, bool or None, not {key.TypeName}"),
    };
}

/// <summary>
/// Python's equality of dict keys: strings by value, numbers by value (<c>True == 1 == 1.0</c>), none, and tuples
/// item by item. Lists, dicts and namespaces are not hashable (<see cref="IsHashable"/>).
/// </summary>
internal sealed class PythonKeyComparer : IEqualityComparer<JinjaValue>
{
    public static readonly PythonKeyComparer Instance = new();

    internal static bool IsHashable(JinjaValue v) =>
        v is JinjaString or JinjaInteger or JinjaFloat or JinjaBool or JinjaNull || (v is JinjaTuple t && t.Items.All(IsHashable));

    public bool Equals(JinjaValue? x, JinjaValue? y) => (x, y) switch
    {
        (JinjaString a, JinjaString b) => string.Equals(a.Value, b.Value, StringComparison.Ordinal),
        (JinjaInteger or JinjaFloat or JinjaBool, JinjaInteger or JinjaFloat or JinjaBool) => JinjaInterpreter.Num(x) == JinjaInterpreter.Num(y),
        (JinjaNull, JinjaNull) => true,
        (JinjaTuple a, JinjaTuple b) => a.Items.Count == b.Items.Count && a.Items.Zip(b.Items).All(p => Equals(p.First, p.Second)),
        _ => ReferenceEquals(x, y),
    };

    public int GetHashCode(JinjaValue obj) => obj switch
    {
        JinjaString s => StringComparer.Ordinal.GetHashCode(s.Value),
        JinjaInteger or JinjaFloat or JinjaBool => JinjaInterpreter.Num(obj).GetHashCode(),
        JinjaNull => 0,
        JinjaTuple t => t.Items.Aggregate(17, (h, item) => HashCode.Combine(h, GetHashCode(item))),
        _ => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj),
    };
}

internal sealed class JinjaUndefined : JinjaValue
{
    public static readonly JinjaUndefined Instance = new();
    internal override string TypeName => "UndefinedValue";
    internal override bool IsTruthy => false;
    internal override string JsString() => "undefined";
}

internal sealed class JinjaNull : JinjaValue
{
    public static readonly JinjaNull Instance = new();
    internal override string TypeName => "NullValue";
    internal override bool IsTruthy => false;
    internal override string JsString() => "null";
}

internal sealed class JinjaBool(bool value) : JinjaValue
{
    public static readonly JinjaBool True = new(true);
    public static readonly JinjaBool False = new(false);
    public static JinjaBool Of(bool b) => b ? True : False;
    public bool Value { get; } = value;
    internal override string TypeName => "BooleanValue";
    internal override bool IsTruthy => Value;
    internal override string JsString() => Value ? "true" : "false";
}

internal sealed class JinjaInteger(double value) : JinjaValue
{
    public double Value { get; } = value;
    internal override string TypeName => "IntegerValue";
    internal override bool IsTruthy => Value != 0 && !double.IsNaN(Value);
    internal override string JsString() => JsNumber(Value);
}

internal sealed class JinjaFloat(double value) : JinjaValue
{
    public double Value { get; } = value;
    internal override string TypeName => "FloatValue";
    internal override bool IsTruthy => Value != 0 && !double.IsNaN(Value);
    internal override string JsString() => JsNumber(Value);

    public override string ToString()
    {
        if (Value == 0 && double.IsNegative(Value))
        {
            return "-0.0";
        }
        return double.IsFinite(Value) && Math.Floor(Value) == Value
            ? Value.ToString("F1", CultureInfo.InvariantCulture)
            : JsNumber(Value);
    }
}

internal sealed class JinjaString(string value) : JinjaValue
{
    public string Value { get; } = value;
    internal override string TypeName => "StringValue";
    internal override bool IsTruthy => Value.Length > 0;
    internal override string JsString() => Value;
    internal override JinjaValue? Builtin(string name) => StringMethods.Get(this, name);
}

internal class JinjaArray(List<JinjaValue> items) : JinjaValue
{
    public List<JinjaValue> Items { get; } = items;
    internal override string TypeName => "ArrayValue";
    internal override bool IsTruthy => Items.Count > 0;
    public override string ToString() => ToJson(DefaultJson, undefinedToNull: false);
    internal override string JsString() => string.Join(",", Items.Select(i => i is JinjaNull or JinjaUndefined ? "" : i.ToString()));
    internal override JinjaValue? Builtin(string name) => name == "length" ? new JinjaInteger(Items.Count) : null;
}

internal sealed class JinjaTuple(List<JinjaValue> items) : JinjaArray(items)
{
    internal override string TypeName => "TupleValue";
}

internal class JinjaObject : JinjaValue
{
    /// <summary>The entries; keys are strings, or numbers, booleans, none or tuples as a Python dict allows.</summary>
    public OrderedDictionary<JinjaValue, JinjaValue> Items { get; } = new(PythonKeyComparer.Instance);
    internal override string TypeName => "ObjectValue";
    internal override bool IsTruthy => Items.Count > 0;
    public override string ToString() => ToJson(DefaultJson, undefinedToNull: false);
    internal override string JsString() => "[object Map]";
    internal override JinjaValue? Builtin(string name) => ObjectMethods.Get(this, name);

    internal JinjaArray Pairs() => new(Items.Select(kv => (JinjaValue)new JinjaArray([kv.Key, kv.Value])).ToList());
    internal JinjaArray Keys() => new(Items.Keys.ToList());
    internal JinjaArray Values() => new(Items.Values.ToList());
}

internal sealed class JinjaKwargs : JinjaObject
{
    internal override string TypeName => "KeywordArgumentsValue";
}

internal sealed class JinjaNamespace : JinjaValue
{
    public OrderedDictionary<string, JinjaValue> Items { get; } = new(StringComparer.Ordinal);
    internal override string TypeName => "NamespaceValue";
    public override string ToString() => ToJson(DefaultJson, undefinedToNull: false);
    internal override string JsString() => "[object Map]";
}

internal delegate JinjaValue JinjaCallable(List<JinjaValue> args, JinjaScope scope);

internal sealed class JinjaFunction(JinjaCallable fn) : JinjaValue
{
    public JinjaCallable Invoke { get; } = fn;
    internal override string TypeName => "FunctionValue";
    internal override string JsString() => "function";
}
