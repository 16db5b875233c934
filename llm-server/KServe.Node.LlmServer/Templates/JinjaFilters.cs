using System.Globalization;

namespace KServe.Node.LlmServer.Templates;

internal sealed partial class JinjaInterpreter
{
    private static double ParseIntPrefix(string s)
    {
        // JavaScript parseInt(s, 10): optional sign then leading digits, after leading whitespace.
        var t = StringMethods.JsTrimStart(s);
        var i = 0;
        if (i < t.Length && t[i] is '+' or '-')
        {
            i++;
        }
        var start = i;
        while (i < t.Length && char.IsAsciiDigit(t[i]))
        {
            i++;
        }
        if (i == start)
        {
            return double.NaN;
        }
        return double.Parse(t[..i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
    }

    private static double ParseFloatPrefix(string s)
    {
        var t = StringMethods.JsTrimStart(s);
        for (var len = t.Length; len > 0; len--)
        {
            var candidate = t[..len];
            if (candidate.EndsWith('e') || candidate.EndsWith('E') || candidate.EndsWith('+') || candidate.EndsWith('-'))
            {
                continue;
            }
            if (candidate.Contains("Infinity", StringComparison.Ordinal))
            {
                return candidate.StartsWith('-') ? double.NegativeInfinity : double.PositiveInfinity;
            }
            if (double.TryParse(candidate, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent,
                    CultureInfo.InvariantCulture, out var d))
            {
                return d;
            }
        }
        return double.NaN;
    }

    private static string JoinRaw(IEnumerable<JinjaValue> values, string separator) =>
        string.Join(separator, values.Select(v => v is JinjaNull or JinjaUndefined ? "" : v.JsString()));

    private static JinjaValue First(List<JinjaValue> items) => items.Count > 0 ? items[0] : JinjaUndefined.Instance;

    private JinjaValue ApplyFilter(JinjaValue operand, Node filterNode, JinjaScope scope)
    {
        if (filterNode is IdentifierNode id)
        {
            return ApplySimpleFilter(operand, id.Name);
        }
        if (filterNode is not CallNode call)
        {
            throw new JinjaException("Unknown filter");
        }
        if (call.Callee is not IdentifierNode calleeId)
        {
            throw new JinjaException("Unknown filter");
        }
        var name = calleeId.Name;
        switch (name)
        {
            case "tojson":
                {
                    var (_, kw) = EvaluateArguments(call.Args, scope);
                    var indent = kw.GetValueOrDefault("indent") ?? JinjaNull.Instance;
                    if (indent is not (JinjaInteger or JinjaNull))
                    {
                        throw new JinjaException("If set, indent must be a number");
                    }
                    var ensureAscii = kw.GetValueOrDefault("ensure_ascii") ?? JinjaBool.False;
                    if (ensureAscii is not JinjaBool ea)
                    {
                        throw new JinjaException("If set, ensure_ascii must be a boolean");
                    }
                    var sortKeys = kw.GetValueOrDefault("sort_keys") ?? JinjaBool.False;
                    if (sortKeys is not JinjaBool sk)
                    {
                        throw new JinjaException("If set, sort_keys must be a boolean");
                    }
                    var separatorsArg = kw.GetValueOrDefault("separators") ?? JinjaNull.Instance;
                    string? itemSep = null, keySep = null;
                    if (separatorsArg is JinjaArray sepArr)
                    {
                        if (sepArr.Items.Count != 2 || sepArr.Items[0] is not JinjaString a || sepArr.Items[1] is not JinjaString b)
                        {
                            throw new JinjaException("separators must be a tuple of two strings");
                        }
                        itemSep = a.Value;
                        keySep = b.Value;
                    }
                    else if (separatorsArg is not JinjaNull)
                    {
                        throw new JinjaException("If set, separators must be a tuple of two strings");
                    }
                    var indentValue = indent is JinjaInteger ii ? (int)ii.Value : (int?)null;
                    return new JinjaString(operand.ToJson(new JinjaValue.JsonOptions(indentValue, ea.Value, itemSep, keySep, sk.Value)));
                }
            case "join":
                {
                    List<JinjaValue> values = operand switch
                    {
                        JinjaString s => CodePoints(s.Value).Select(c => (JinjaValue)new JinjaString(c)).ToList(),
                        JinjaArray a => a.Items,
                        _ => throw new JinjaException($"Cannot apply filter \"{name}\" to type: {operand.TypeName}"),
                    };
                    var (args, kw) = EvaluateArguments(call.Args, scope);
                    var separator = args.Count > 0 ? args[0] : kw.GetValueOrDefault("separator") ?? new JinjaString("");
                    if (separator is not JinjaString sep)
                    {
                        throw new JinjaException("separator must be a string");
                    }
                    return new JinjaString(JoinRaw(values, sep.Value));
                }
            case "int":
            case "float":
                {
                    var (args, kw) = EvaluateArguments(call.Args, scope);
                    var dflt = args.Count > 0 ? args[0] : kw.GetValueOrDefault("default")
                        ?? (name == "int" ? new JinjaInteger(0) : new JinjaFloat(0));
                    switch (operand)
                    {
                        case JinjaString s:
                            {
                                var v = name == "int" ? ParseIntPrefix(s.Value) : ParseFloatPrefix(s.Value);
                                return double.IsNaN(v) ? dflt : name == "int" ? new JinjaInteger(v) : new JinjaFloat(v);
                            }
                        case JinjaInteger or JinjaFloat:
                            return operand;
                        case JinjaBool b:
                            return name == "int" ? new JinjaInteger(b.Value ? 1 : 0) : new JinjaFloat(b.Value ? 1 : 0);
                        default:
                            throw new JinjaException($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
                    }
                }
            case "default":
                {
                    var (args, kw) = EvaluateArguments(call.Args, scope);
                    var dflt = args.Count > 0 ? args[0] : new JinjaString("");
                    var boolean = args.Count > 1 ? args[1] : kw.GetValueOrDefault("boolean") ?? JinjaBool.False;
                    if (boolean is not JinjaBool bv)
                    {
                        throw new JinjaException("`default` filter flag must be a boolean");
                    }
                    return operand is JinjaUndefined || (bv.Value && !operand.IsTruthy) ? dflt : operand;
                }
        }
        if (name is "selectattr" or "rejectattr" or "map" && !operand.IsTruthy)
        {
            // jinja2 yields nothing for a false value (`if value:`), so `none | selectattr(...)` is empty.
            return new JinjaArray([]);
        }
        switch (operand)
        {
            case JinjaArray arr:
                return ApplyArrayCallFilter(arr, name, call, scope);
            case JinjaString str:
                switch (name)
                {
                    case "indent":
                        {
                            var (args, kw) = EvaluateArguments(call.Args, scope);
                            var width = args.Count > 0 ? args[0] : kw.GetValueOrDefault("width") ?? new JinjaInteger(4);
                            if (width is not JinjaInteger w)
                            {
                                throw new JinjaException("width must be a number");
                            }
                            var first = args.Count > 1 ? args[1] : kw.GetValueOrDefault("first") ?? JinjaBool.False;
                            var blank = args.Count > 2 ? args[2] : kw.GetValueOrDefault("blank") ?? JinjaBool.False;
                            var pad = new string(' ', (int)w.Value);
                            var lines = str.Value.Split('\n');
                            for (var i = 0; i < lines.Length; i++)
                            {
                                var skip = (!first.IsTruthy && i == 0) || (!blank.IsTruthy && lines[i].Length == 0);
                                if (!skip)
                                {
                                    lines[i] = pad + lines[i];
                                }
                            }
                            return new JinjaString(string.Join('\n', lines));
                        }
                    case "replace":
                        {
                            var (args, kw) = EvaluateArguments(call.Args, scope);
                            var kwargs = new JinjaKwargs();
                            foreach (var (k, v) in kw)
                            {
                                kwargs.Items[new JinjaString(k)] = v;
                            }
                            args.Add(kwargs);
                            return StringMethods.Replace(str.Value, args);
                        }
                }
                throw new JinjaException($"Unknown StringValue filter: {name}");
            case JinjaObject obj:
                {
                    if (obj.Builtin(name) is JinjaFunction fn)
                    {
                        var (args, kw) = EvaluateArguments(call.Args, scope);
                        return fn.Invoke(WithKwargs(args, kw), scope);
                    }
                    throw new JinjaException($"Unknown ObjectValue filter: {name}");
                }
            default:
                throw new JinjaException($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
        }
    }

    private static JinjaValue Attribute(JinjaValue item, string path)
    {
        var value = item;
        foreach (var part in path.Split('.'))
        {
            switch (value)
            {
                case JinjaObject o:
                    value = o.Items.TryGetValue(new JinjaString(part), out var v) ? v : JinjaUndefined.Instance;
                    break;
                case JinjaNamespace n:
                    value = n.Items.TryGetValue(part, out var nv) ? nv : JinjaUndefined.Instance;
                    break;
                case JinjaArray a:
                    if (int.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var index) && index >= 0 && index < a.Items.Count)
                    {
                        value = a.Items[index];
                    }
                    else
                    {
                        return JinjaUndefined.Instance;
                    }
                    break;
                default:
                    return JinjaUndefined.Instance;
            }
        }
        return value;
    }

    private JinjaArray ApplyArrayCallFilter(JinjaArray arr, string name, CallNode call, JinjaScope scope)
    {
        switch (name)
        {
            case "sort":
                {
                    var (args, kw) = EvaluateArguments(call.Args, scope);
                    if ((args.Count > 0 ? args[0] : kw.GetValueOrDefault("reverse") ?? JinjaBool.False) is not JinjaBool reverse)
                    {
                        throw new JinjaException("reverse must be a boolean");
                    }
                    if ((args.Count > 1 ? args[1] : kw.GetValueOrDefault("case_sensitive") ?? JinjaBool.False) is not JinjaBool cs)
                    {
                        throw new JinjaException("case_sensitive must be a boolean");
                    }
                    var attribute = args.Count > 2 ? args[2] : kw.GetValueOrDefault("attribute") ?? JinjaNull.Instance;
                    if (attribute is not (JinjaString or JinjaInteger or JinjaNull))
                    {
                        throw new JinjaException("attribute must be a string, integer, or null");
                    }
                    JinjaValue Key(JinjaValue item) => attribute switch
                    {
                        JinjaNull => item,
                        JinjaInteger i => Attribute(item, i.JsString()),
                        _ => Attribute(item, ((JinjaString)attribute).Value),
                    };
                    return new JinjaArray(ObjectMethods.StableSort(arr.Items.ToList(), (a, b) =>
                    {
                        var r = Compare(Key(a), Key(b), cs.Value);
                        return reverse.Value ? -r : r;
                    }));
                }
            case "selectattr":
            case "rejectattr":
                {
                    var select = name == "selectattr";
                    if (arr.Items.Any(i => i is not (JinjaObject or JinjaNamespace)))
                    {
                        throw new JinjaException($"`{name}` can only be applied to array of objects");
                    }
                    if (call.Args.Any(a => a is not StringNode))
                    {
                        throw new JinjaException($"arguments of `{name}` must be strings");
                    }
                    var values = call.Args.Select(a => Evaluate(a, scope)).ToList();
                    var attr = values.Count > 0 ? ((JinjaString)values[0]).Value : "undefined";
                    var testName = values.Count > 1 ? ((JinjaString)values[1]).Value : null;
                    var testArg = values.Count > 2 ? values[2] : null;
                    var filtered = arr.Items.Where(item =>
                    {
                        var a = item is JinjaObject o ? o.Items.GetValueOrDefault(new JinjaString(attr)) : ((JinjaNamespace)item).Items.GetValueOrDefault(attr);
                        var result = a is not null
                            && (testName is null ? a.IsTruthy : RunTest(testName, a, testArg));
                        return select ? result : !result;
                    }).ToList();
                    return new JinjaArray(filtered);
                }
            case "map":
                {
                    var (_, kw) = EvaluateArguments(call.Args, scope);
                    if (!kw.TryGetValue("attribute", out var attr))
                    {
                        throw new JinjaException("`map` expressions without `attribute` set are not currently supported.");
                    }
                    if (attr is not JinjaString attrName)
                    {
                        throw new JinjaException("attribute must be a string");
                    }
                    var dflt = kw.GetValueOrDefault("default");
                    return new JinjaArray(arr.Items.Select(item =>
                    {
                        if (item is not (JinjaObject or JinjaNamespace))
                        {
                            throw new JinjaException("items in map must be an object");
                        }
                        var v = Attribute(item, attrName.Value);
                        return v is JinjaUndefined ? dflt ?? JinjaUndefined.Instance : v;
                    }).ToList());
                }
        }
        throw new JinjaException($"Unknown ArrayValue filter: {name}");
    }

    private static JinjaValue ApplySimpleFilter(JinjaValue operand, string name)
    {
        if (name == "safe")
        {
            return operand;
        }
        if (name == "tojson")
        {
            return new JinjaString(operand.ToJson(JinjaValue.DefaultJson));
        }
        if (name == "string")
        {
            return new JinjaString(JinjaValue.PythonStr(operand));
        }
        if (operand is JinjaUndefined && name == "length")
        {
            // jinja2: len(Undefined) is 0.
            return new JinjaInteger(0);
        }
        switch (operand)
        {
            case JinjaArray arr:
                switch (name)
                {
                    case "list": return operand;
                    case "first": return First(arr.Items);
                    case "last": return arr.Items.Count > 0 ? arr.Items[^1] : JinjaUndefined.Instance;
                    case "length": return new JinjaInteger(arr.Items.Count);
                    case "reverse": return new JinjaArray(Enumerable.Reverse(arr.Items).ToList());
                    case "sort": return new JinjaArray(ObjectMethods.StableSort(arr.Items.ToList(), (a, b) => Compare(a, b, false)));
                    case "join": return new JinjaString(JoinRaw(arr.Items, ""));
                    case "unique":
                        {
                            var output = new List<JinjaValue>();
                            foreach (var item in arr.Items)
                            {
                                if (!output.Any(o => StrictEquals(o, item)))
                                {
                                    output.Add(item);
                                }
                            }
                            return new JinjaArray(output);
                        }
                    default: throw new JinjaException($"Unknown ArrayValue filter: {name}");
                }
            case JinjaString str:
                switch (name)
                {
                    case "length": return new JinjaInteger(str.Value.Length);
                    case "upper": return new JinjaString(str.Value.ToUpperInvariant());
                    case "lower": return new JinjaString(str.Value.ToLowerInvariant());
                    case "title": return new JinjaString(StringMethods.Title(str.Value));
                    case "capitalize": return new JinjaString(StringMethods.Capitalize(str.Value));
                    case "trim": return new JinjaString(StringMethods.JsTrim(str.Value));
                    case "indent":
                        return new JinjaString(string.Join('\n', str.Value.Split('\n').Select((x, i) => i == 0 || x.Length == 0 ? x : "    " + x)));
                    case "join":
                        return operand;
                    case "int":
                        {
                            var v = ParseIntPrefix(str.Value);
                            return new JinjaInteger(double.IsNaN(v) ? 0 : v);
                        }
                    case "float":
                        {
                            var v = ParseFloatPrefix(str.Value);
                            return new JinjaFloat(double.IsNaN(v) ? 0 : v);
                        }
                    default: throw new JinjaException($"Unknown StringValue filter: {name}");
                }
            case JinjaInteger or JinjaFloat:
                {
                    var v = operand is JinjaInteger i ? i.Value : ((JinjaFloat)operand).Value;
                    return name switch
                    {
                        "abs" => operand is JinjaInteger ? new JinjaInteger(Math.Abs(v)) : new JinjaFloat(Math.Abs(v)),
                        "int" => new JinjaInteger(Math.Floor(v)),
                        "float" => new JinjaFloat(v),
                        _ => throw new JinjaException($"Unknown NumericValue filter: {name}"),
                    };
                }
            case JinjaObject obj:
                switch (name)
                {
                    case "items": return obj.Pairs();
                    case "length": return new JinjaInteger(obj.Items.Count);
                    default:
                        {
                            var builtin = obj.Builtin(name) ?? throw new JinjaException($"Unknown ObjectValue filter: {name}");
                            return builtin is JinjaFunction fn ? fn.Invoke([], new JinjaScope(null)) : builtin;
                        }
                }
            case JinjaBool b:
                return name switch
                {
                    "bool" => b,
                    "int" => new JinjaInteger(b.Value ? 1 : 0),
                    "float" => new JinjaFloat(b.Value ? 1 : 0),
                    _ => throw new JinjaException($"Unknown BooleanValue filter: {name}"),
                };
        }
        throw new JinjaException($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
    }
}
