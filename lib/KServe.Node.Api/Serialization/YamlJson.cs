using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace KServe.Node.Api.Serialization;

/// <summary>
/// Converts YAML to JSON trees and back with the scalar rules Kubernetes tooling uses (go-yaml v2 via
/// sigs.k8s.io/yaml): plain <c>yes</c>/<c>no</c>/<c>on</c>/<c>off</c>/<c>y</c>/<c>n</c> are booleans,
/// <c>~</c> and <c>null</c> are null, <c>0x1F</c> and <c>017</c> are integers; quoted scalars are always
/// strings. Strings that would read back as something else are quoted when writing.
/// </summary>
public static partial class YamlJson
{
    private const string TagStr = "tag:yaml.org,2002:str";
    private const string TagInt = "tag:yaml.org,2002:int";
    private const string TagFloat = "tag:yaml.org,2002:float";
    private const string TagBool = "tag:yaml.org,2002:bool";
    private const string TagNull = "tag:yaml.org,2002:null";

    /// <summary>Parses every document of a YAML stream into JSON trees (an empty document gives null).</summary>
    /// <exception cref="ApiSerializationException">Malformed YAML, a duplicate key, or a value JSON cannot hold.</exception>
    public static IReadOnlyList<JsonNode?> ParseAll(string yaml)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var stream = new YamlStream();
        try
        {
            stream.Load(new Parser(new StringReader(yaml)));
        }
        catch (YamlException e)
        {
            throw new ApiSerializationException("", $"invalid YAML at line {e.Start.Line}, column {e.Start.Column}: {InnermostMessage(e)}", e);
        }
        catch (ArgumentException e)
        {
            // YamlDotNet reports a duplicate mapping key as an ArgumentException from its dictionary.
            throw new ApiSerializationException("", $"invalid YAML: {e.Message}", e);
        }

        var budget = new Budget();
        return [.. stream.Documents.Select(d => Convert(d.RootNode, "", budget))];
    }

    /// <summary>Parses a single-document YAML (or JSON) text into a JSON tree.</summary>
    public static JsonNode? Parse(string yaml)
    {
        var docs = ParseAll(yaml);
        return docs.Count switch
        {
            0 => null,
            1 => docs[0],
            _ => throw new ApiSerializationException("", $"expected one YAML document, found {docs.Count}"),
        };
    }

    /// <summary>Writes a JSON tree as a YAML document (block style, keys in their JSON order).</summary>
    public static string Write(JsonNode? node)
    {
        var sb = new StringBuilder();
        using (var writer = new StringWriter(sb, CultureInfo.InvariantCulture))
        {
            var emitter = new Emitter(writer);
            emitter.Emit(new StreamStart());
            emitter.Emit(new DocumentStart());
            Emit(emitter, node);
            emitter.Emit(new DocumentEnd(true));
            emitter.Emit(new StreamEnd());
        }

        return sb.ToString();
    }

    /// <summary>Writes several JSON trees as a multi-document YAML stream.</summary>
    public static string WriteAll(IEnumerable<JsonNode?> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var sb = new StringBuilder();
        using (var writer = new StringWriter(sb, CultureInfo.InvariantCulture))
        {
            var emitter = new Emitter(writer);
            emitter.Emit(new StreamStart());
            foreach (var node in nodes)
            {
                emitter.Emit(new DocumentStart(null, null, false));
                Emit(emitter, node);
                emitter.Emit(new DocumentEnd(true));
            }

            emitter.Emit(new StreamEnd());
        }

        return sb.ToString();
    }

    /// <summary>Caps the number of nodes a document may expand to: aliases can multiply a small text
    /// ("billion laughs"); no Kubernetes object comes near this.</summary>
    private sealed class Budget
    {
        public const int MaxNodes = 1_000_000;

        public int Used { get; set; }
    }

    private static JsonNode? Convert(YamlNode node, string path, Budget budget)
    {
        if (++budget.Used > Budget.MaxNodes)
        {
            throw new ApiSerializationException(path, $"the document expands to more than {Budget.MaxNodes} nodes (alias bomb?)");
        }

        switch (node)
        {
            case YamlMappingNode map:
                var obj = new JsonObject();
                var merges = new List<YamlNode>();
                foreach (var (keyNode, valueNode) in map.Children)
                {
                    if (keyNode is not YamlScalarNode keyScalar)
                    {
                        throw new ApiSerializationException(path, $"mapping keys must be scalars (line {keyNode.Start.Line})");
                    }

                    if (keyScalar.Value == "<<" && keyScalar.Style is ScalarStyle.Plain or ScalarStyle.Any)
                    {
                        merges.Add(valueNode);
                        continue;
                    }

                    var key = keyScalar.Value ?? "";
                    var childPath = JsonPath.Append(path, key);
                    if (obj.ContainsKey(key))
                    {
                        throw new ApiSerializationException(childPath, $"duplicate key \"{key}\" (line {keyNode.Start.Line})");
                    }

                    obj[key] = Convert(valueNode, childPath, budget);
                }

                // YAML merge keys: explicit keys win, then earlier merged mappings over later ones.
                foreach (var merge in merges)
                {
                    IEnumerable<YamlNode> sources = merge is YamlSequenceNode list ? list.Children : [merge];
                    foreach (var source in sources)
                    {
                        if (Convert(source, path, budget) is not JsonObject merged)
                        {
                            throw new ApiSerializationException(path, $"a merge key (<<) must refer to a mapping (line {source.Start.Line})");
                        }

                        foreach (var (key, value) in merged.ToList())
                        {
                            if (!obj.ContainsKey(key))
                            {
                                merged.Remove(key);
                                obj[key] = value;
                            }
                        }
                    }
                }

                return obj;
            case YamlSequenceNode seq:
                var array = new JsonArray();
                var i = 0;
                foreach (var item in seq.Children)
                {
                    array.Add(Convert(item, $"{path}[{i++}]", budget));
                }

                return array;
            case YamlScalarNode scalar:
                return ConvertScalar(scalar, path);
            default:
                throw new ApiSerializationException(path, $"unsupported YAML node at line {node.Start.Line}");
        }
    }

    private static JsonNode? ConvertScalar(YamlScalarNode scalar, string path)
    {
        var value = scalar.Value ?? "";
        var tag = scalar.Tag.IsEmpty ? null : scalar.Tag.Value;
        if (tag is TagStr || (tag is null && scalar.Style is not ScalarStyle.Plain and not ScalarStyle.Any))
        {
            return JsonValue.Create(value);
        }

        if (tag is not null and not TagInt and not TagFloat and not TagBool and not TagNull)
        {
            // A non-standard tag ("!", "!custom") carries no type for JSON: keep the text.
            return JsonValue.Create(value);
        }

        var resolved = ResolvePlain(value, out var kind);
        if (kind == PlainKind.NotRepresentable)
        {
            throw new ApiSerializationException(path, $"\"{value}\" (line {scalar.Start.Line}) cannot be represented in JSON");
        }

        return resolved;
    }

    private enum PlainKind
    {
        String,
        Null,
        Bool,
        Number,
        NotRepresentable,
    }

    private static readonly HashSet<string> Nulls = new(StringComparer.Ordinal) { "", "~", "null", "Null", "NULL" };
    private static readonly HashSet<string> Trues = new(StringComparer.Ordinal) { "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON" };
    private static readonly HashSet<string> Falses = new(StringComparer.Ordinal) { "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF" };
    private static readonly HashSet<string> Specials = new(StringComparer.Ordinal)
    {
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
    };

    /// <summary>Resolves a plain scalar the way go-yaml v2 does, producing the JSON value.</summary>
    private static JsonNode? ResolvePlain(string s, out PlainKind kind)
    {
        if (Nulls.Contains(s))
        {
            kind = PlainKind.Null;
            return null;
        }

        if (Trues.Contains(s) || Falses.Contains(s))
        {
            kind = PlainKind.Bool;
            return JsonValue.Create(Trues.Contains(s));
        }

        if (Specials.Contains(s))
        {
            kind = PlainKind.NotRepresentable;
            return null;
        }

        if (s.Length > 0 && "+-.0123456789".Contains(s[0], StringComparison.Ordinal))
        {
            var plain = s.Replace("_", "", StringComparison.Ordinal);
            if (TryParseGoInt(plain, out var integer))
            {
                kind = PlainKind.Number;
                return JsonNode.Parse(integer.ToString(CultureInfo.InvariantCulture));
            }

            if (YamlFloat().IsMatch(plain))
            {
                kind = PlainKind.Number;
                if (JsonNumber().IsMatch(plain))
                {
                    // Keep the exact text (JsonNode preserves it) rather than round through a double.
                    return JsonNode.Parse(plain);
                }

                var d = double.Parse(plain, NumberStyles.Float, CultureInfo.InvariantCulture);
                return JsonNode.Parse(d.ToString("R", CultureInfo.InvariantCulture));
            }
        }

        kind = PlainKind.String;
        return JsonValue.Create(s);
    }

    /// <summary>Go's <c>strconv.ParseInt(s, 0, 64)</c> then <c>ParseUint</c>: optional sign, 0x/0o/0b prefixes, a leading 0 means octal.</summary>
    private static bool TryParseGoInt(string s, out BigInteger value)
    {
        value = BigInteger.Zero;
        var neg = false;
        var body = s;
        if (body.StartsWith('+') || body.StartsWith('-'))
        {
            neg = body[0] == '-';
            body = body[1..];
        }

        if (body.Length == 0)
        {
            return false;
        }

        int radix;
        if (body.Length > 2 && body[0] == '0' && body[1] is 'x' or 'X')
        {
            radix = 16;
            body = body[2..];
        }
        else if (body.Length > 2 && body[0] == '0' && body[1] is 'b' or 'B')
        {
            radix = 2;
            body = body[2..];
        }
        else if (body.Length > 2 && body[0] == '0' && body[1] is 'o' or 'O')
        {
            radix = 8;
            body = body[2..];
        }
        else if (body.Length > 1 && body[0] == '0')
        {
            radix = 8;
            body = body[1..];
        }
        else
        {
            radix = 10;
        }

        foreach (var c in body)
        {
            var digit = c switch
            {
                >= '0' and <= '9' => c - '0',
                >= 'a' and <= 'f' => c - 'a' + 10,
                >= 'A' and <= 'F' => c - 'A' + 10,
                _ => 99,
            };
            if (digit >= radix)
            {
                return false;
            }

            value = (value * radix) + digit;
        }

        if (neg)
        {
            value = -value;
        }

        return value >= long.MinValue && value <= ulong.MaxValue;
    }

    private static void Emit(IEmitter emitter, JsonNode? node)
    {
        switch (node)
        {
            case null:
                emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, "null", ScalarStyle.Plain, true, false));
                break;
            case JsonObject obj:
                emitter.Emit(new MappingStart(AnchorName.Empty, TagName.Empty, true, obj.Count == 0 ? MappingStyle.Flow : MappingStyle.Block));
                foreach (var (key, value) in obj)
                {
                    EmitString(emitter, key);
                    Emit(emitter, value);
                }

                emitter.Emit(new MappingEnd());
                break;
            case JsonArray array:
                emitter.Emit(new SequenceStart(AnchorName.Empty, TagName.Empty, true, array.Count == 0 ? SequenceStyle.Flow : SequenceStyle.Block));
                foreach (var item in array)
                {
                    Emit(emitter, item);
                }

                emitter.Emit(new SequenceEnd());
                break;
            case JsonValue value:
                switch (value.GetValueKind())
                {
                    case JsonValueKind.String:
                        EmitString(emitter, value.GetValue<string>());
                        break;
                    case JsonValueKind.True:
                    case JsonValueKind.False:
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, value.GetValueKind() == JsonValueKind.True ? "true" : "false", ScalarStyle.Plain, true, false));
                        break;
                    case JsonValueKind.Number:
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, value.ToJsonString(), ScalarStyle.Plain, true, false));
                        break;
                    default:
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, "null", ScalarStyle.Plain, true, false));
                        break;
                }

                break;
        }
    }

    private static void EmitString(IEmitter emitter, string s)
    {
        // Plain only when the text reads back as this same string; the emitter itself falls back to
        // quotes for indicators such as ": " or a leading "-".
        var plainSafe = s.Length > 0
            && !s.Contains('\n', StringComparison.Ordinal)
            && !char.IsWhiteSpace(s[0]) && !char.IsWhiteSpace(s[^1])
            && ResolvesToSameString(s);
        var style = plainSafe ? ScalarStyle.Plain : ScalarStyle.DoubleQuoted;
        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, s, style, plainSafe, !plainSafe));
    }

    private static bool ResolvesToSameString(string s)
    {
        _ = ResolvePlain(s, out var kind);
        return kind == PlainKind.String;
    }

    private static string InnermostMessage(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e.Message;
    }

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$", RegexOptions.CultureInvariant)]
    private static partial Regex YamlFloat();

    [GeneratedRegex(@"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$", RegexOptions.CultureInvariant)]
    private static partial Regex JsonNumber();
}

/// <summary>Builds the field paths used in error messages: <c>spec.nodeGroups[0]</c>, <c>metadata.labels[a/b]</c>.</summary>
internal static class JsonPath
{
    public static string Append(string path, string key)
    {
        var simple = key.Length > 0 && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');
        if (simple)
        {
            return path.Length == 0 ? key : $"{path}.{key}";
        }

        return $"{path}[{key}]";
    }

    /// <summary>Turns System.Text.Json's <c>$.spec['a.b'][0]</c> into <c>spec[a.b][0]</c>.</summary>
    public static string FromJsonExceptionPath(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$")
        {
            return "";
        }

        var p = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
        return p.Replace("['", "[", StringComparison.Ordinal).Replace("']", "]", StringComparison.Ordinal);
    }
}
