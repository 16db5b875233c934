using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LlmServer.Grammar;

/// <summary>A JSON schema that cannot be turned into a grammar; the message names the schema location.</summary>
public sealed class JsonSchemaGrammarException : Exception
{
    public JsonSchemaGrammarException(string message) : base(message) { }
    public JsonSchemaGrammarException() { }
    public JsonSchemaGrammarException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// Converts a JSON schema into a GBNF grammar for llama.cpp's grammar sampler (root rule <c>root</c>),
/// with the same whitespace and primitive conventions as llama.cpp's json-schema-to-grammar: objects,
/// properties, required, arrays with items/minItems/maxItems, enum, const, string/number/integer/boolean/null,
/// anyOf/oneOf, type lists, and local <c>$ref</c>s (<c>#/$defs/...</c>, <c>#/definitions/...</c>).
/// Unknown keywords are ignored, as llama.cpp does.
/// </summary>
public sealed class JsonSchemaGrammar
{
    private const int MaxDepth = 64;

    private static readonly Dictionary<string, (string Body, string[] Deps)> Primitives = new(StringComparer.Ordinal)
    {
        ["boolean"] = ("(\"true\" | \"false\") space", []),
        ["decimal-part"] = ("[0-9]{1,16}", []),
        ["integral-part"] = ("[0] | [1-9] [0-9]{0,15}", []),
        ["number"] = ("(\"-\"? integral-part) (\".\" decimal-part)? ([eE] [-+]? integral-part)? space", ["integral-part", "decimal-part"]),
        ["integer"] = ("(\"-\"? integral-part) space", ["integral-part"]),
        ["value"] = ("object | array | string | number | boolean | null", ["object", "array", "string", "number", "boolean", "null"]),
        ["object"] = ("\"{\" space ( string \":\" space value (\",\" space string \":\" space value)* )? \"}\" space", ["string", "value"]),
        ["array"] = ("\"[\" space ( value (\",\" space value)* )? \"]\" space", ["value"]),
        ["char"] = ("[^\"\\\\\\x7F\\x00-\\x1F] | [\\\\] ([\"\\\\bfnrt] | \"u\" [0-9a-fA-F]{4})", []),
        ["string"] = ("\"\\\"\" char* \"\\\"\" space", ["char"]),
        ["null"] = ("\"null\" space", []),
    };

    private const string SpaceRule = "| \" \" | \"\\n\"{1,2} [ \\t]{0,20}";

    private readonly SortedDictionary<string, string> _rules = new(StringComparer.Ordinal);
    private JsonNode? _root;
    private readonly Dictionary<string, string> _refRules = new(StringComparer.Ordinal);

    private JsonSchemaGrammar(JsonNode? root)
    {
        _root = root;
        _rules["space"] = SpaceRule;
    }

    /// <summary>The grammar of any JSON object (<c>response_format: json_object</c>).</summary>
    public static string JsonObject()
    {
        var g = new JsonSchemaGrammar(null);
        g._rules["root"] = g.Primitive("object");
        return g.Format();
    }

    /// <summary>Converts a schema; throws <see cref="JsonSchemaGrammarException"/> for a schema it cannot express.</summary>
    public static string FromSchema(JsonNode? schema)
    {
        var g = new JsonSchemaGrammar(schema);
        var body = g.Visit(schema, "root", 0);
        g._rules["root"] = body;
        return g.Format();
    }

    /// <summary>
    /// One grammar holding several schemas: each becomes a rule named after its entry (the returned names may
    /// carry a suffix when they collide), and <paramref name="root"/> writes the root rule from those names
    /// (it may use the <c>space</c> rule). Each schema's <c>$ref</c>s resolve within that schema.
    /// </summary>
    public static string Compose(IReadOnlyList<(string Name, JsonNode? Schema)> schemas, Func<IReadOnlyList<string>, string> root)
    {
        ArgumentNullException.ThrowIfNull(schemas);
        ArgumentNullException.ThrowIfNull(root);
        var g = new JsonSchemaGrammar(null);
        var names = new List<string>(schemas.Count);
        // Reserved so that a property named "root" gets a rule of its own.
        g._rules["root"] = "\"\"";
        foreach (var (name, schema) in schemas)
        {
            g._root = schema;
            g._refRules.Clear();
            names.Add(g.AddRule(name, g.Visit(schema, name, 0)));
        }
        g._rules["root"] = root(names);
        return g.Format();
    }

    private string Format()
    {
        var sb = new StringBuilder();
        foreach (var (name, body) in _rules)
        {
            sb.Append(name).Append(" ::= ").Append(body).Append('\n');
        }
        return sb.ToString();
    }

    private string Primitive(string name)
    {
        if (!_rules.ContainsKey(name))
        {
            var (body, deps) = Primitives[name];
            _rules[name] = body;
            foreach (var d in deps)
            {
                Primitive(d);
            }
        }
        return name;
    }

    private string AddRule(string name, string body)
    {
        var safe = SanitizeName(name);
        if (_rules.TryGetValue(safe, out var existing) && existing != body)
        {
            var i = 1;
            while (_rules.TryGetValue(safe + i.ToString(CultureInfo.InvariantCulture), out var other) && other != body)
            {
                i++;
            }
            safe += i.ToString(CultureInfo.InvariantCulture);
        }
        _rules[safe] = body;
        return safe;
    }

    private static string SanitizeName(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) ? c : '-');
        }
        return sb.Length == 0 ? "r" : sb.ToString();
    }

    /// <summary>A GBNF string literal for the exact text.</summary>
    internal static string Literal(string text)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\x").Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    private static string JsonLiteral(JsonNode? value) => Literal(value?.ToJsonString() ?? "null") + " space";

    private string Visit(JsonNode? schema, string name, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new JsonSchemaGrammarException($"schema at '{name}' nests deeper than {MaxDepth} levels");
        }
        if (schema is null)
        {
            return Primitive("value");
        }
        if (schema is JsonValue v && v.TryGetValue<bool>(out var b))
        {
            return b ? Primitive("value") : throw new JsonSchemaGrammarException($"schema at '{name}' is false: nothing can match");
        }
        if (schema is not JsonObject obj)
        {
            throw new JsonSchemaGrammarException($"schema at '{name}' must be an object or a boolean");
        }
        if (obj["$ref"] is JsonNode refNode)
        {
            return Ref(refNode.GetValue<string>(), depth);
        }
        if ((obj["oneOf"] ?? obj["anyOf"]) is JsonArray alts)
        {
            if (alts.Count == 0)
            {
                throw new JsonSchemaGrammarException($"schema at '{name}': anyOf/oneOf is empty");
            }
            return string.Join(" | ", alts.Select((a, i) => AddRule($"{name}-{i}", Visit(a, $"{name}-{i}", depth + 1))));
        }
        if (obj.ContainsKey("const"))
        {
            return JsonLiteral(obj["const"]);
        }
        if (obj["enum"] is JsonArray values)
        {
            if (values.Count == 0)
            {
                throw new JsonSchemaGrammarException($"schema at '{name}': enum is empty");
            }
            return "(" + string.Join(" | ", values.Select(JsonLiteral)) + ")";
        }
        var type = obj["type"];
        if (type is JsonArray types)
        {
            return string.Join(" | ", types.Select((t, i) =>
            {
                var copy = (JsonObject)obj.DeepClone();
                copy["type"] = t?.DeepClone();
                return AddRule($"{name}-{t}", Visit(copy, $"{name}-{t}", depth + 1));
            }));
        }
        var typeName = type is JsonValue tv && tv.TryGetValue<string>(out var s) ? s : null;
        if (type is not null && typeName is null)
        {
            throw new JsonSchemaGrammarException($"schema at '{name}': type must be a string or a list of strings");
        }
        if (typeName is null && obj["properties"] is not null)
        {
            typeName = "object";
        }
        if (typeName is null && obj["items"] is not null)
        {
            typeName = "array";
        }
        return typeName switch
        {
            null => Primitive("value"),
            "object" => ObjectRule(obj, name, depth),
            "array" => ArrayRule(obj, name, depth),
            "string" or "number" or "integer" or "boolean" or "null" => Primitive(typeName),
            _ => throw new JsonSchemaGrammarException($"schema at '{name}': unsupported type '{typeName}'"),
        };
    }

    private string Ref(string reference, int depth)
    {
        if (_refRules.TryGetValue(reference, out var known))
        {
            return known;
        }
        if (!reference.StartsWith("#/", StringComparison.Ordinal))
        {
            throw new JsonSchemaGrammarException($"$ref '{reference}' is not local to the schema (only '#/...' references are supported)");
        }
        JsonNode? target = _root;
        foreach (var part in reference[2..].Split('/'))
        {
            var key = part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            target = target is JsonObject o && o.TryGetPropertyValue(key, out var next) ? next
                : throw new JsonSchemaGrammarException($"$ref '{reference}' does not resolve within the schema");
        }
        var ruleName = AddRule("ref" + reference[1..], "\"\"");
        _refRules[reference] = ruleName;
        _rules[ruleName] = Visit(target, ruleName, depth + 1);
        return ruleName;
    }

    private string ObjectRule(JsonObject obj, string name, int depth)
    {
        var properties = obj["properties"] as JsonObject;
        if (properties is null || properties.Count == 0)
        {
            return Primitive("object");
        }
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (obj["required"] is JsonArray req)
        {
            foreach (var r in req)
            {
                required.Add(r?.GetValue<string>() ?? throw new JsonSchemaGrammarException($"schema at '{name}': required holds a non-string"));
            }
        }
        var kv = new List<(string Key, string Rule, bool Required)>();
        foreach (var (key, propSchema) in properties)
        {
            var propName = $"{name}-{key}";
            var valueRule = AddRule(propName, Visit(propSchema, propName, depth + 1));
            var kvRule = AddRule(propName + "-kv", $"{Literal(JsonSerializer.Serialize(key))} space \":\" space {valueRule}");
            kv.Add((key, kvRule, required.Contains(key)));
        }
        var req1 = kv.Where(k => k.Required).ToList();
        var opt = kv.Where(k => !k.Required).ToList();
        var sb = new StringBuilder("\"{\" space ");
        for (var i = 0; i < req1.Count; i++)
        {
            if (i > 0)
            {
                sb.Append("\",\" space ");
            }
            sb.Append(req1[i].Rule).Append(' ');
        }
        if (opt.Count > 0)
        {
            if (req1.Count > 0)
            {
                foreach (var o in opt)
                {
                    sb.Append("(\",\" space ").Append(o.Rule).Append(")? ");
                }
            }
            else
            {
                // No required property: any optional one may come first, the later ones follow with commas.
                var alts = new List<string>();
                for (var i = 0; i < opt.Count; i++)
                {
                    var rest = string.Concat(opt.Skip(i + 1).Select(o => $" (\",\" space {o.Rule})?"));
                    alts.Add(opt[i].Rule + rest);
                }
                sb.Append("( ").Append(string.Join(" | ", alts)).Append(" )? ");
            }
        }
        sb.Append("\"}\" space");
        return sb.ToString();
    }

    private string ArrayRule(JsonObject obj, string name, int depth)
    {
        var item = obj["items"] is JsonNode items ? AddRule(name + "-item", Visit(items, name + "-item", depth + 1)) : Primitive("value");
        var min = obj["minItems"] is JsonValue mv && mv.TryGetValue<int>(out var mi) ? Math.Max(0, mi) : 0;
        int? max = obj["maxItems"] is JsonValue xv && xv.TryGetValue<int>(out var xi) ? Math.Max(0, xi) : null;
        if (max < min)
        {
            throw new JsonSchemaGrammarException($"schema at '{name}': maxItems is below minItems");
        }
        string list;
        if (max == 0)
        {
            list = "";
        }
        else
        {
            // item ("," item){min-1,max-1}, optional as a whole when min is 0.
            var repeatMin = Math.Max(0, min - 1);
            var repeat = max is null ? $"{{{repeatMin},}}" : $"{{{repeatMin},{max.Value - 1}}}";
            list = $"{item} (\",\" space {item}){repeat}";
            if (min == 0)
            {
                list = $"( {list} )?";
            }
        }
        return $"\"[\" space {list} \"]\" space";
    }
}
