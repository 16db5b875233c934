using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>YAML documents to JSON with YAML 1.2 core-schema scalars (quoted scalars stay strings).</summary>
internal static class YamlJson
{
    public static IEnumerable<JsonObject> Documents(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        foreach (var doc in stream.Documents)
        {
            if (Convert(doc.RootNode) is JsonObject o)
            {
                yield return o;
            }
        }
    }

    private static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", Convert(kv.Value)))),
        YamlSequenceNode s => new JsonArray([.. s.Children.Select(Convert)]),
        YamlScalarNode sc => Scalar(sc),
        _ => null,
    };

    private static JsonValue? Scalar(YamlScalarNode sc)
    {
        var v = sc.Value ?? "";
        if (sc.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded)
        {
            return JsonValue.Create(v);
        }
        switch (v)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "false" or "False" or "FALSE":
                return JsonValue.Create(false);
        }
        if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            return JsonValue.Create(l);
        }
        if ((v.Contains('.', StringComparison.Ordinal) || v.Contains('e', StringComparison.OrdinalIgnoreCase))
            && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && char.IsAsciiDigit(v[^1]))
        {
            return JsonValue.Create(d);
        }
        return JsonValue.Create(v);
    }
}
