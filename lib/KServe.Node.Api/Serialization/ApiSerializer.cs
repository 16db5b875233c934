using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;

namespace KServe.Node.Api.Serialization;

/// <summary>Thrown when a YAML or JSON text cannot be read into a type; <see cref="Path"/> names the field.</summary>
public sealed class ApiSerializationException : Exception
{
    public ApiSerializationException()
    {
        Path = "";
    }

    public ApiSerializationException(string message)
        : base(message)
    {
        Path = "";
    }

    public ApiSerializationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Path = "";
    }

    public ApiSerializationException(string path, string problem, Exception? innerException = null)
        : base(string.IsNullOrEmpty(path) ? problem : $"{path}: {problem}", innerException)
    {
        Path = path ?? "";
    }

    /// <summary>The JSON field path of the problem (<c>spec.sourceModelUri</c>), empty for the whole document.</summary>
    public string Path { get; }
}

/// <summary>
/// YAML and JSON serialization of the CRD types through KubernetesClient's <see cref="KubernetesJson"/>.
/// KubernetesClient's own <c>KubernetesYaml</c> maps YAML straight onto properties with YamlDotNet and
/// silently drops fields it does not know (it does not honour <c>[JsonExtensionData]</c>), so YAML goes
/// YAML → JSON tree → <see cref="KubernetesJson"/> here, and back the same way; unknown fields survive.
/// </summary>
public static partial class ApiSerializer
{
    private static readonly Lazy<Dictionary<string, Type>> TypeMap = new(BuildTypeMap);

    /// <summary>Reads a YAML or JSON document into <typeparamref name="T"/>.</summary>
    /// <exception cref="ApiSerializationException">Malformed text or a value of the wrong type; the message names the field.</exception>
    public static T Deserialize<T>(string yamlOrJson)
    {
        var node = ParseNode(yamlOrJson) ?? throw new ApiSerializationException("", "the document is empty");
        return FromNode<T>(node);
    }

    /// <summary>Reads a JSON tree into <typeparamref name="T"/>.</summary>
    public static T FromNode<T>(JsonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        try
        {
            return KubernetesJson.Deserialize<T>(node) ?? throw new ApiSerializationException("", "the document is null");
        }
        catch (JsonException e)
        {
            throw Translate(e, node);
        }
    }

    /// <summary>Reads one YAML or JSON document whose type is chosen by its <c>apiVersion</c> and <c>kind</c>
    /// (this library's kinds and KubernetesClient's built-in ones).</summary>
    public static IKubernetesObject DeserializeObject(string yamlOrJson)
    {
        var node = ParseNode(yamlOrJson) ?? throw new ApiSerializationException("", "the document is empty");
        return ObjectFromNode(node);
    }

    /// <summary>Reads every non-empty document of a YAML stream, each typed by its <c>apiVersion</c> and <c>kind</c>.</summary>
    public static IReadOnlyList<IKubernetesObject> DeserializeAll(string yaml)
    {
        var nodes = LooksLikeJson(yaml) ? [JsonNode.Parse(yaml)] : YamlJson.ParseAll(yaml);
        return [.. nodes.Where(n => n is not null).Select(n => ObjectFromNode(n!))];
    }

    /// <summary>The CLR type for an <c>apiVersion</c> and <c>kind</c>, or null when unknown.</summary>
    public static Type? ResolveType(string apiVersion, string kind) =>
        TypeMap.Value.TryGetValue($"{apiVersion}/{kind}", out var t) ? t : null;

    /// <summary>Serializes through <see cref="KubernetesJson"/>.</summary>
    public static string SerializeJson(object value, bool indented = false)
    {
        ArgumentNullException.ThrowIfNull(value);
        var json = KubernetesJson.Serialize(value);
        return indented ? JsonNode.Parse(json)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) : json;
    }

    /// <summary>Serializes to YAML (through the same JSON as <see cref="SerializeJson"/>).</summary>
    public static string SerializeYaml(object value) => YamlJson.Write(ToNode(value));

    /// <summary>Serializes several objects to a multi-document YAML stream.</summary>
    public static string SerializeYamlAll(IEnumerable<object> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return YamlJson.WriteAll(values.Select(ToNode));
    }

    /// <summary>The JSON tree of an object as <see cref="KubernetesJson"/> writes it.</summary>
    public static JsonNode ToNode(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return JsonNode.Parse(KubernetesJson.Serialize(value))!;
    }

    /// <summary>Parses YAML or JSON text into a JSON tree (null for an empty document).</summary>
    public static JsonNode? ParseNode(string yamlOrJson)
    {
        ArgumentNullException.ThrowIfNull(yamlOrJson);
        if (LooksLikeJson(yamlOrJson))
        {
            try
            {
                return JsonNode.Parse(yamlOrJson, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = false });
            }
            catch (JsonException e)
            {
                throw new ApiSerializationException("", $"invalid JSON at line {e.LineNumber + 1}: {e.Message}", e);
            }
        }

        return YamlJson.Parse(yamlOrJson);
    }

    /// <summary>True when both objects serialize to the same JSON tree (key order ignored).</summary>
    public static bool JsonEquals(object? a, object? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        return JsonNode.DeepEquals(ToNode(a), ToNode(b));
    }

    /// <summary>A deep copy through JSON (unknown fields included).</summary>
    public static T Clone<T>(T value)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(value);
        return KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(value));
    }

    /// <summary>Reads a JSON tree whose type is chosen by its <c>apiVersion</c> and <c>kind</c>.</summary>
    public static IKubernetesObject DeserializeObject(JsonNode node) => ObjectFromNode(node);

    private static IKubernetesObject ObjectFromNode(JsonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node is not JsonObject obj)
        {
            throw new ApiSerializationException("", "expected an object with apiVersion and kind");
        }

        var apiVersion = StringField(obj, "apiVersion");
        var kind = StringField(obj, "kind");
        var type = ResolveType(apiVersion, kind)
            ?? throw new ApiSerializationException("kind", $"unknown kind \"{kind}\" in apiVersion \"{apiVersion}\"");
        try
        {
            var method = DeserializeAsMethod.MakeGenericMethod(type);
            return (IKubernetesObject)method.Invoke(null, [node])!;
        }
        catch (TargetInvocationException e) when (e.InnerException is JsonException je)
        {
            throw Translate(je, node);
        }
    }

    private static readonly MethodInfo DeserializeAsMethod =
        typeof(ApiSerializer).GetMethod(nameof(DeserializeAs), BindingFlags.NonPublic | BindingFlags.Static)!;

    private static IKubernetesObject DeserializeAs<T>(JsonNode node)
        where T : IKubernetesObject => KubernetesJson.Deserialize<T>(node);

    private static string StringField(JsonObject obj, string name)
    {
        if (!obj.TryGetPropertyValue(name, out var v) || v is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
        {
            throw new ApiSerializationException(name, "required (a string)");
        }

        return value.GetValue<string>();
    }

    private static bool LooksLikeJson(string text)
    {
        foreach (var c in text)
        {
            if (!char.IsWhiteSpace(c))
            {
                return c is '{' or '[';
            }
        }

        return false;
    }

    private static ApiSerializationException Translate(JsonException e, JsonNode root)
    {
        var path = JsonPath.FromJsonExceptionPath(e.Path);
        var message = e.Message;
        var generic = ConvertMessage().Match(message);
        string problem;
        if (generic.Success)
        {
            var actual = Describe(Find(root, e.Path));
            problem = $"expected {FriendlyType(generic.Groups[1].Value)}, got {actual}";
        }
        else
        {
            var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
            problem = cut >= 0 ? message[..cut] : message;
        }

        return new ApiSerializationException(path, problem, e);
    }

    private static string FriendlyType(string clrType)
    {
        if (clrType.Contains("Dictionary", StringComparison.Ordinal))
        {
            return "an object";
        }

        if (clrType.Contains("List", StringComparison.Ordinal) || clrType.EndsWith("[]", StringComparison.Ordinal))
        {
            return "an array";
        }

        if (clrType.Contains("System.String", StringComparison.Ordinal))
        {
            return "a string";
        }

        if (clrType.Contains("System.Int", StringComparison.Ordinal) || clrType.Contains("System.UInt", StringComparison.Ordinal))
        {
            return "an integer";
        }

        if (clrType.Contains("System.Boolean", StringComparison.Ordinal))
        {
            return "a boolean";
        }

        if (clrType.Contains("System.DateTime", StringComparison.Ordinal))
        {
            return "an RFC 3339 date-time string";
        }

        if (clrType.Contains("System.Double", StringComparison.Ordinal) || clrType.Contains("System.Decimal", StringComparison.Ordinal))
        {
            return "a number";
        }

        return "an object";
    }

    private static string Describe(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "an array",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => $"a string ({Truncate(v.ToJsonString())})",
            JsonValueKind.Number => $"a number ({Truncate(v.ToJsonString())})",
            JsonValueKind.True or JsonValueKind.False => $"a boolean ({v.ToJsonString()})",
            _ => "null",
        },
        _ => "a value",
    };

    private static string Truncate(string s) => s.Length <= 60 ? s : s[..57] + "...";

    /// <summary>Finds the node at an STJ path such as <c>$.spec.nodeGroups[0]</c> or <c>$['a.b']</c>.</summary>
    private static JsonNode? Find(JsonNode root, string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return root;
        }

        JsonNode? current = root;
        foreach (Match m in PathSegment().Matches(path))
        {
            if (current is null)
            {
                return null;
            }

            if (m.Groups["name"].Success || m.Groups["quoted"].Success)
            {
                var name = m.Groups["name"].Success ? m.Groups["name"].Value : m.Groups["quoted"].Value;
                current = current is JsonObject o && o.TryGetPropertyValue(name, out var child) ? child : null;
            }
            else if (m.Groups["index"].Success)
            {
                var index = int.Parse(m.Groups["index"].Value, System.Globalization.CultureInfo.InvariantCulture);
                current = current is JsonArray a && index < a.Count ? a[index] : null;
            }
        }

        return current;
    }

    private static Dictionary<string, Type> BuildTypeMap()
    {
        var map = new Dictionary<string, Type>(StringComparer.Ordinal);
        foreach (var assembly in new[] { typeof(V1Pod).Assembly, typeof(ApiSerializer).Assembly })
        {
            foreach (var t in assembly.GetExportedTypes())
            {
                if (t.GetCustomAttribute<KubernetesEntityAttribute>() is not { } attr || !typeof(IKubernetesObject).IsAssignableFrom(t))
                {
                    continue;
                }

                // List types carry their item's attribute; key them by their own kind constant.
                var kind = t.GetField("KubeKind", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as string ?? attr.Kind;
                var apiVersion = string.IsNullOrEmpty(attr.Group) ? attr.ApiVersion : $"{attr.Group}/{attr.ApiVersion}";
                map[$"{apiVersion}/{kind}"] = t;
            }
        }

        return map;
    }

    [GeneratedRegex(@"could not be converted to (.+?)\. Path:", RegexOptions.CultureInvariant)]
    private static partial Regex ConvertMessage();

    [GeneratedRegex(@"\.(?<name>[^.\[]+)|\['(?<quoted>[^']*)'\]|\[(?<index>[0-9]+)\]", RegexOptions.CultureInvariant)]
    private static partial Regex PathSegment();
}
