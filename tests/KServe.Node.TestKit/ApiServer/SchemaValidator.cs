using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>
/// Structural-schema handling of custom resources as the apiserver does it, in its order: prune unknown
/// fields and non-nullable nulls, apply defaults, then validate (Kubernetes docs "Extend the Kubernetes
/// API with CustomResourceDefinitions": sections "Field pruning", "Defaulting", "Validation" and
/// "Validation rules"). Messages copy kube-openapi's validate package ("in body must be of type",
/// "should have at least N items", "should be greater than or equal to", "should match") and the field
/// package ("Required value", "Unsupported value").
/// </summary>
internal static class SchemaValidator
{
    /// <summary>Prunes, defaults and validates <paramref name="obj"/> in place; returns the field errors.</summary>
    public static List<FieldError> Process(JsonObject obj, JsonObject? old, JsonObject schema)
    {
        var errors = new List<FieldError>();
        var props = schema["properties"] as JsonObject;
        foreach (var key in obj.Select(p => p.Key).ToList())
        {
            if (key is "apiVersion" or "kind" or "metadata")
            {
                continue;
            }
            if (props?[key] is JsonObject sub)
            {
                var v = obj[key];
                if (v is null && !IsNullable(sub))
                {
                    obj.Remove(key);
                    continue;
                }
                var replaced = Walk(v, old?[key], sub, key, errors);
                if (!ReferenceEquals(replaced, v))
                {
                    obj[key] = replaced;
                }
            }
            else if (!PreservesUnknown(schema))
            {
                obj.Remove(key);
            }
        }
        ApplyDefaults(obj, schema, skipMeta: true);
        CheckRequired(obj, schema, "", errors, skipMeta: true);
        return errors;
    }

    private static bool IsNullable(JsonObject s) => s["nullable"]?.GetValue<bool>() == true;

    private static bool PreservesUnknown(JsonObject s) => s["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;

    private static JsonNode? Walk(JsonNode? value, JsonNode? old, JsonObject schema, string path, List<FieldError> errors)
    {
        if (value is null)
        {
            if (!IsNullable(schema))
            {
                errors.Add(new FieldError("FieldValueTypeInvalid", path, $"Invalid value: \"null\": {path} in body must be of type {TypeOf(schema)}: \"null\""));
            }
            return value;
        }
        var type = schema["type"]?.GetValue<string>();
        var intOrString = schema["x-kubernetes-int-or-string"]?.GetValue<bool>() == true;
        var kind = value.GetValueKind();
        if (intOrString)
        {
            if (!(kind == JsonValueKind.String || IsInteger(value)))
            {
                errors.Add(new FieldError("FieldValueTypeInvalid", path, $"Invalid value: \"{Describe(kind)}\": {path} in body must be of type integer-or-string: \"{Describe(kind)}\""));
                return value;
            }
        }
        else if (type is not null && !TypeMatches(type, value, kind))
        {
            errors.Add(new FieldError("FieldValueTypeInvalid", path, $"Invalid value: \"{Describe(kind)}\": {path} in body must be of type {type}: \"{Describe(kind)}\""));
            return value;
        }

        switch (value)
        {
            case JsonObject o:
                WalkObject(o, old as JsonObject, schema, path, errors);
                break;
            case JsonArray a:
                if (schema["minItems"] is JsonValue minI && a.Count < minI.GetValue<long>())
                {
                    errors.Add(new FieldError("FieldValueInvalid", path, $"Invalid value: {a.Count}: {path} in body should have at least {minI.GetValue<long>()} items"));
                }
                if (schema["maxItems"] is JsonValue maxI && a.Count > maxI.GetValue<long>())
                {
                    errors.Add(new FieldError("FieldValueTooMany", path, $"Too many: {a.Count}: must have at most {maxI.GetValue<long>()} items"));
                }
                if (schema["items"] is JsonObject itemSchema)
                {
                    for (var i = 0; i < a.Count; i++)
                    {
                        var item = a[i];
                        var replaced = Walk(item, null, itemSchema, $"{path}[{i}]", errors);
                        if (!ReferenceEquals(replaced, item))
                        {
                            a[i] = replaced;
                        }
                    }
                }
                if (schema["x-kubernetes-list-type"]?.GetValue<string>() == "set" && a.Select(x => x?.ToJsonString()).Distinct().Count() != a.Count)
                {
                    errors.Add(new FieldError("FieldValueDuplicate", path, "Duplicate value"));
                }
                break;
            default:
                CheckScalar((JsonValue)value, kind, schema, path, errors);
                break;
        }

        if (schema["enum"] is JsonArray en && !en.Any(e => JsonNode.DeepEquals(e, value)))
        {
            var supported = string.Join(", ", en.Select(e => e?.ToJsonString()));
            errors.Add(new FieldError("FieldValueNotSupported", path, $"Unsupported value: {value.ToJsonString()}: supported values: {supported}"));
        }
        CheckTransitionRules(value, old, schema, path, errors);
        return value;
    }

    private static void WalkObject(JsonObject o, JsonObject? old, JsonObject schema, string path, List<FieldError> errors)
    {
        var props = schema["properties"] as JsonObject;
        var additional = schema["additionalProperties"];
        var preserve = PreservesUnknown(schema);
        if (schema["x-kubernetes-embedded-resource"]?.GetValue<bool>() == true)
        {
            // Embedded objects keep apiVersion/kind/metadata.
            preserve = preserve || props is null;
        }
        foreach (var key in o.Select(p => p.Key).ToList())
        {
            JsonObject? sub = props?[key] as JsonObject;
            if (sub is null && additional is JsonObject addSchema)
            {
                sub = addSchema;
            }
            var childPath = path.Length == 0 ? key : $"{path}.{key}";
            if (sub is null)
            {
                if (!(preserve || additional is JsonValue av && av.GetValue<bool>()))
                {
                    o.Remove(key);
                }
                continue;
            }
            var v = o[key];
            if (v is null && !IsNullable(sub))
            {
                o.Remove(key);
                continue;
            }
            var replaced = Walk(v, old?[key], sub, childPath, errors);
            if (!ReferenceEquals(replaced, v))
            {
                o[key] = replaced;
            }
        }
        ApplyDefaults(o, schema, skipMeta: false);
        CheckRequired(o, schema, path, errors, skipMeta: false);
    }

    private static void ApplyDefaults(JsonObject o, JsonObject schema, bool skipMeta)
    {
        if (schema["properties"] is not JsonObject props)
        {
            return;
        }
        foreach (var (k, s) in props)
        {
            if (skipMeta && k is "apiVersion" or "kind" or "metadata")
            {
                continue;
            }
            if (!o.ContainsKey(k) && s?["default"] is { } d)
            {
                o[k] = d.DeepClone();
            }
        }
    }

    private static void CheckRequired(JsonObject o, JsonObject schema, string path, List<FieldError> errors, bool skipMeta)
    {
        if (schema["required"] is not JsonArray req)
        {
            return;
        }
        foreach (var r in req)
        {
            var name = r?.GetValue<string>();
            if (name is null || (skipMeta && name is "apiVersion" or "kind" or "metadata"))
            {
                continue;
            }
            if (!o.ContainsKey(name))
            {
                errors.Add(new FieldError("FieldValueRequired", path.Length == 0 ? name : $"{path}.{name}", "Required value"));
            }
        }
    }

    private static void CheckScalar(JsonValue v, JsonValueKind kind, JsonObject schema, string path, List<FieldError> errors)
    {
        if (kind == JsonValueKind.Number)
        {
            var d = v.GetValue<double>();
            var shown = v.ToJsonString();
            if (schema["minimum"] is JsonValue min)
            {
                var m = min.GetValue<double>();
                var exclusive = schema["exclusiveMinimum"]?.GetValue<bool>() == true;
                if (exclusive ? d <= m : d < m)
                {
                    errors.Add(new FieldError("FieldValueInvalid", path, $"Invalid value: {shown}: {path} in body should be greater than {(exclusive ? "" : "or equal to ")}{min.ToJsonString()}"));
                }
            }
            if (schema["maximum"] is JsonValue max)
            {
                var m = max.GetValue<double>();
                var exclusive = schema["exclusiveMaximum"]?.GetValue<bool>() == true;
                if (exclusive ? d >= m : d > m)
                {
                    errors.Add(new FieldError("FieldValueInvalid", path, $"Invalid value: {shown}: {path} in body should be less than {(exclusive ? "" : "or equal to ")}{max.ToJsonString()}"));
                }
            }
        }
        else if (kind == JsonValueKind.String)
        {
            var s = v.GetValue<string>();
            if (schema["minLength"] is JsonValue minL && s.Length < minL.GetValue<long>())
            {
                errors.Add(new FieldError("FieldValueInvalid", path, $"Invalid value: \"{s}\": {path} in body should be at least {minL.GetValue<long>()} chars long"));
            }
            if (schema["maxLength"] is JsonValue maxL && s.Length > maxL.GetValue<long>())
            {
                errors.Add(new FieldError("FieldValueTooLong", path, $"Too long: may not be more than {maxL.GetValue<long>()} bytes"));
            }
            if (schema["pattern"]?.GetValue<string>() is { } pattern && !Regex.IsMatch(s, pattern, RegexOptions.None, TimeSpan.FromSeconds(1)))
            {
                errors.Add(new FieldError("FieldValueInvalid", path, $"Invalid value: \"{s}\": {path} in body should match '{pattern}'"));
            }
        }
    }

    /// <summary>
    /// x-kubernetes-validations: only the transition rule <c>self == oldSelf</c> (immutability) is
    /// evaluated; any other CEL rule is accepted without evaluation, since no CEL interpreter is part of
    /// this server and the controllers under test do not depend on other rules.
    /// </summary>
    private static void CheckTransitionRules(JsonNode value, JsonNode? old, JsonObject schema, string path, List<FieldError> errors)
    {
        if (old is null || schema["x-kubernetes-validations"] is not JsonArray rules)
        {
            return;
        }
        foreach (var r in rules)
        {
            var rule = r?["rule"]?.GetValue<string>()?.Trim();
            if (rule != "self == oldSelf" || JsonNode.DeepEquals(value, old))
            {
                continue;
            }
            var message = r?["message"]?.GetValue<string>() ?? "failed rule: self == oldSelf";
            errors.Add(new FieldError("FieldValueInvalid", path, $"Invalid value: \"{Describe(value.GetValueKind())}\": {message}"));
        }
    }

    private static bool IsInteger(JsonNode v) =>
        v.GetValueKind() == JsonValueKind.Number && v is JsonValue jv && jv.TryGetValue<double>(out var d) && Math.Floor(d) == d && !v.ToJsonString().Contains('.', StringComparison.Ordinal);

    private static bool TypeMatches(string type, JsonNode v, JsonValueKind kind) => type switch
    {
        "object" => kind == JsonValueKind.Object,
        "array" => kind == JsonValueKind.Array,
        "string" => kind == JsonValueKind.String,
        "boolean" => kind is JsonValueKind.True or JsonValueKind.False,
        "integer" => IsInteger(v),
        "number" => kind == JsonValueKind.Number,
        _ => true,
    };

    private static string TypeOf(JsonObject schema) =>
        schema["x-kubernetes-int-or-string"]?.GetValue<bool>() == true ? "integer-or-string" : schema["type"]?.GetValue<string>() ?? "object";

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    /// <summary>The openAPIV3Schema of one version of a CRD (or null).</summary>
    public static JsonObject? SchemaOf(JsonObject crdVersion) => crdVersion["schema"]?["openAPIV3Schema"] as JsonObject;

    internal static string FormatNumber(double d) => d.ToString(CultureInfo.InvariantCulture);
}
