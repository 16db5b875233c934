using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace KServe.Node.Api.Tests.Crds;

/// <summary>
/// Checks a JSON value against a CRD's OpenAPI v3 schema the way the API server's structural validation
/// does for the keywords our CRDs use: type, int-or-string, enum, pattern, minimum, minItems, required,
/// properties/additionalProperties, and pruning of unknown fields (reported separately). CEL rules need
/// the old object and are not evaluated here.
/// </summary>
internal static class SchemaValidator
{
    public sealed record Result(IReadOnlyList<string> Errors, IReadOnlyList<string> Pruned);

    public static Result Validate(JsonNode? value, JsonObject schema)
    {
        var errors = new List<string>();
        var pruned = new List<string>();
        Check(value, schema, "", errors, pruned);
        return new Result(errors, pruned);
    }

    private static void Check(JsonNode? value, JsonObject schema, string path, List<string> errors, List<string> pruned)
    {
        if (value is null)
        {
            // Kubernetes drops nulls of non-nullable fields before validation.
            return;
        }

        var kind = value.GetValueKind();
        var intOrString = schema["x-kubernetes-int-or-string"]?.GetValue<bool>() == true;
        var type = schema["type"]?.GetValue<string>();
        if (intOrString)
        {
            if (kind != JsonValueKind.String && !IsInteger(value))
            {
                errors.Add($"{path}: must be an integer or a string");
                return;
            }
        }
        else if (type is not null && !Matches(type, value))
        {
            errors.Add($"{path}: must be of type {type}, got {Describe(kind)}");
            return;
        }

        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => JsonNode.DeepEquals(a, value)))
        {
            errors.Add($"{path}: Unsupported value {value.ToJsonString()}: supported values: {string.Join(", ", allowed.Select(a => a!.ToJsonString()))}");
        }

        if (kind == JsonValueKind.String && schema["pattern"] is JsonValue pattern
            && !Regex.IsMatch(value.GetValue<string>(), pattern.GetValue<string>(), RegexOptions.CultureInvariant))
        {
            errors.Add($"{path}: should match '{pattern.GetValue<string>()}'");
        }

        if (kind == JsonValueKind.Number && schema["minimum"] is JsonValue minimum
            && value.GetValue<decimal>() < minimum.GetValue<decimal>())
        {
            errors.Add($"{path}: should be greater than or equal to {minimum.GetValue<decimal>().ToString(CultureInfo.InvariantCulture)}");
        }

        if (value is JsonArray array)
        {
            if (schema["minItems"] is JsonValue minItems && array.Count < minItems.GetValue<int>())
            {
                errors.Add($"{path}: should have at least {minItems.GetValue<int>()} items");
            }

            if (schema["items"] is JsonObject items)
            {
                for (var i = 0; i < array.Count; i++)
                {
                    Check(array[i], items, $"{path}[{i}]", errors, pruned);
                }
            }
        }

        if (value is JsonObject obj)
        {
            var preserve = schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;
            var properties = schema["properties"] as JsonObject;
            var additional = schema["additionalProperties"] as JsonObject;
            if (schema["required"] is JsonArray required)
            {
                foreach (var r in required)
                {
                    var name = r!.GetValue<string>();
                    if (!obj.ContainsKey(name))
                    {
                        errors.Add($"{Join(path, name)}: Required value");
                    }
                }
            }

            foreach (var (key, child) in obj)
            {
                var childPath = additional is not null ? $"{path}[{key}]" : Join(path, key);
                if (properties?[key] is JsonObject propertySchema)
                {
                    Check(child, propertySchema, childPath, errors, pruned);
                }
                else if (additional is not null)
                {
                    Check(child, additional, childPath, errors, pruned);
                }
                else if (!preserve && properties is not null)
                {
                    pruned.Add(childPath);
                }
            }
        }
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    private static bool IsInteger(JsonNode value) =>
        value.GetValueKind() == JsonValueKind.Number && decimal.TryParse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d == decimal.Truncate(d);

    private static bool Matches(string type, JsonNode value) => type switch
    {
        "string" => value.GetValueKind() == JsonValueKind.String,
        "boolean" => value.GetValueKind() is JsonValueKind.True or JsonValueKind.False,
        "integer" => IsInteger(value),
        "number" => value.GetValueKind() == JsonValueKind.Number,
        "object" => value is JsonObject,
        "array" => value is JsonArray,
        _ => false,
    };

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => kind.ToString().ToLowerInvariant(),
    };
}
