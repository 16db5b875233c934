using System.Collections;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s.Models;
using KServe.Node.Api.Serialization;

namespace KServe.Node.Api.Tests.Crds;

/// <summary>A printer column of a CRD version.</summary>
internal sealed record PrinterColumn(string Name, string Type, string JsonPath, int Priority = 0, string? Description = null);

/// <summary>Everything about one CRD that the C# types do not say.</summary>
/// <param name="KindType">The kind's C# type; its spec and status property types give the schema.</param>
/// <param name="OpaqueBuiltins">InferenceService style: Kubernetes core types become opaque objects and every
/// object keeps unknown fields (nothing is pruned). Otherwise core types are embedded in full and unknown
/// fields are pruned, as in KServe's full CRDs.</param>
/// <param name="Overrides">Schema additions by path: <c>.</c> for properties, <c>[]</c> for array items,
/// <c>{}</c> for map values (e.g. <c>status.nodeStatus{}</c>).</param>
internal sealed record CrdDefinition(
    Type KindType,
    string Plural,
    string Singular,
    string ListKind,
    string Scope,
    IReadOnlyList<string> ShortNames,
    bool StatusSubresource,
    IReadOnlyList<PrinterColumn> Columns,
    bool OpaqueBuiltins,
    IReadOnlyDictionary<string, Action<JsonObject>> Overrides,
    string RelativePath)
{
    public string Kind => (string)KindType.GetField("KubeKind")!.GetValue(null)!;

    public string Group => (string)KindType.GetField("KubeGroup")!.GetValue(null)!;

    public string Version => (string)KindType.GetField("KubeVersion")!.GetValue(null)!;

    public string Name => $"{Plural}.{Group}";
}

/// <summary>
/// Generates apiextensions.k8s.io/v1 CRDs from the C# types: one property per <c>[JsonPropertyName]</c>
/// property (extension data and <c>[JsonIgnore]</c> members excluded), so the manifests cannot drift from
/// the types; <see cref="CrdManifestTests"/> fails when the checked-in files differ from this output.
/// </summary>
internal static class CrdGenerator
{
    public const string Header =
        "# Generated from the C# types in lib/KServe.Node.Api by tests/KServe.Node.Api.Tests (CrdManifestTests).\n" +
        "# Do not edit: change the types or tests/KServe.Node.Api.Tests/Crds/CrdDefinitions.cs, then run\n" +
        "#   KSERVE_NODE_WRITE_CRDS=1 dotnet test tests/KServe.Node.Api.Tests --filter FullyQualifiedName~Checked_in_crd\n";

    // KubernetesClient's models carry no "required" information; these are the ones that matter for the
    // embedded PV/PVC templates and conditions (from the Kubernetes OpenAPI).
    private static readonly Dictionary<Type, string[]> KnownRequired = new()
    {
        [typeof(V1Condition)] = ["lastTransitionTime", "message", "reason", "status", "type"],
        [typeof(V1NodeSelector)] = ["nodeSelectorTerms"],
        [typeof(V1NodeSelectorRequirement)] = ["key", "operator"],
        [typeof(V1VolumeNodeAffinity)] = [],
        [typeof(V1LocalVolumeSource)] = ["path"],
        [typeof(V1HostPathVolumeSource)] = ["path"],
        [typeof(V1NFSVolumeSource)] = ["path", "server"],
        [typeof(V1CSIPersistentVolumeSource)] = ["driver", "volumeHandle"],
        [typeof(V1LabelSelectorRequirement)] = ["key", "operator"],
        [typeof(V1TypedLocalObjectReference)] = ["kind", "name"],
        [typeof(V1TypedObjectReference)] = ["kind", "name"],
    };

    public static JsonObject Generate(CrdDefinition def)
    {
        var kindType = def.KindType;
        var specType = kindType.GetProperty("Spec")!.PropertyType;
        var statusType = Nullable.GetUnderlyingType(kindType.GetProperty("Status")!.PropertyType) ?? kindType.GetProperty("Status")!.PropertyType;

        var ctx = new Context(def);
        var schema = new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject
            {
                ["apiVersion"] = new JsonObject { ["type"] = "string" },
                ["kind"] = new JsonObject { ["type"] = "string" },
                ["metadata"] = new JsonObject { ["type"] = "object" },
                ["spec"] = ctx.Schema(specType, "spec"),
                ["status"] = ctx.Schema(statusType, "status"),
            },
        };
        ctx.CheckAllOverridesUsed();
        if (def.OpaqueBuiltins)
        {
            schema["x-kubernetes-preserve-unknown-fields"] = true;
        }

        var version = new JsonObject
        {
            ["name"] = def.Version,
            ["served"] = true,
            ["storage"] = true,
        };
        if (def.Columns.Count > 0)
        {
            var columns = new JsonArray();
            foreach (var c in def.Columns)
            {
                var col = new JsonObject { ["name"] = c.Name, ["type"] = c.Type, ["jsonPath"] = c.JsonPath };
                if (c.Priority != 0)
                {
                    col["priority"] = c.Priority;
                }

                if (c.Description is not null)
                {
                    col["description"] = c.Description;
                }

                columns.Add(col);
            }

            version["additionalPrinterColumns"] = columns;
        }

        version["schema"] = new JsonObject { ["openAPIV3Schema"] = Sorted(schema) };
        if (def.StatusSubresource)
        {
            version["subresources"] = new JsonObject { ["status"] = new JsonObject() };
        }

        var names = new JsonObject
        {
            ["kind"] = def.Kind,
            ["listKind"] = def.ListKind,
            ["plural"] = def.Plural,
            ["singular"] = def.Singular,
        };
        if (def.ShortNames.Count > 0)
        {
            names["shortNames"] = new JsonArray([.. def.ShortNames.Select(s => (JsonNode)s)]);
        }

        return new JsonObject
        {
            ["apiVersion"] = "apiextensions.k8s.io/v1",
            ["kind"] = "CustomResourceDefinition",
            ["metadata"] = new JsonObject
            {
                ["name"] = def.Name,
                ["labels"] = new JsonObject { ["app.kubernetes.io/part-of"] = "kserve-node" },
            },
            ["spec"] = new JsonObject
            {
                ["group"] = def.Group,
                ["names"] = names,
                ["scope"] = def.Scope,
                ["versions"] = new JsonArray(version),
            },
        };
    }

    public static string ToYaml(JsonObject crd) => Header + "---\n" + YamlJson.Write(crd);

    /// <summary>The serialized properties of a type: JSON name → property.</summary>
    public static IEnumerable<(string Name, PropertyInfo Property)> JsonProperties(Type t) =>
        t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetCustomAttribute<JsonIgnoreAttribute>() is null && p.GetCustomAttribute<JsonExtensionDataAttribute>() is null)
            .Select(p => (p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(p.Name), p));

    public static bool IsOurs(Type t) => t.Assembly == typeof(StorageKey).Assembly;

    public static JsonObject QuantitySchema(string pattern) => new()
    {
        ["anyOf"] = new JsonArray(new JsonObject { ["type"] = "integer" }, new JsonObject { ["type"] = "string" }),
        ["pattern"] = pattern,
        ["x-kubernetes-int-or-string"] = true,
    };

    private sealed class Context(CrdDefinition def)
    {
        private readonly HashSet<string> usedOverrides = [];
        private readonly Stack<Type> visiting = new();

        public void CheckAllOverridesUsed()
        {
            var unused = def.Overrides.Keys.Where(k => !usedOverrides.Contains(k)).ToList();
            if (unused.Count > 0)
            {
                throw new InvalidOperationException($"{def.Kind}: schema overrides for unknown paths: {string.Join(", ", unused)}");
            }
        }

        public JsonObject Schema(Type type, string path)
        {
            var schema = Build(type, path);
            if (def.Overrides.TryGetValue(path, out var apply))
            {
                apply(schema);
                usedOverrides.Add(path);
            }

            return schema;
        }

        private JsonObject Build(Type type, string path)
        {
            type = Nullable.GetUnderlyingType(type) ?? type;
            if (type == typeof(string))
            {
                return new JsonObject { ["type"] = "string" };
            }

            if (type == typeof(bool))
            {
                return new JsonObject { ["type"] = "boolean" };
            }

            if (type == typeof(int))
            {
                return new JsonObject { ["type"] = "integer", ["format"] = "int32" };
            }

            if (type == typeof(long))
            {
                return new JsonObject { ["type"] = "integer", ["format"] = "int64" };
            }

            if (type == typeof(double) || type == typeof(float))
            {
                return new JsonObject { ["type"] = "number", ["format"] = "double" };
            }

            if (type == typeof(DateTime) || type == typeof(DateTimeOffset))
            {
                return new JsonObject { ["type"] = "string", ["format"] = "date-time" };
            }

            if (type == typeof(byte[]))
            {
                return new JsonObject { ["type"] = "string", ["format"] = "byte" };
            }

            if (type == typeof(ResourceQuantity))
            {
                return QuantitySchema(SchemaPatterns.Quantity);
            }

            if (type == typeof(IntOrString))
            {
                return new JsonObject
                {
                    ["anyOf"] = new JsonArray(new JsonObject { ["type"] = "integer" }, new JsonObject { ["type"] = "string" }),
                    ["x-kubernetes-int-or-string"] = true,
                };
            }

            if (type == typeof(object) || type == typeof(JsonElement) || type == typeof(JsonNode))
            {
                return new JsonObject { ["x-kubernetes-preserve-unknown-fields"] = true };
            }

            if (DictionaryValueType(type) is { } valueType)
            {
                return new JsonObject { ["type"] = "object", ["additionalProperties"] = Schema(valueType, path + "{}") };
            }

            if (ListItemType(type) is { } itemType)
            {
                return new JsonObject { ["type"] = "array", ["items"] = Schema(itemType, path + "[]") };
            }

            if (!type.IsClass)
            {
                throw new NotSupportedException($"{path}: no schema mapping for {type}");
            }

            if (def.OpaqueBuiltins && !IsOurs(type))
            {
                return new JsonObject { ["type"] = "object", ["x-kubernetes-preserve-unknown-fields"] = true };
            }

            if (visiting.Contains(type))
            {
                throw new NotSupportedException($"{path}: recursive type {type} cannot be embedded");
            }

            visiting.Push(type);
            var properties = new JsonObject();
            foreach (var (name, property) in JsonProperties(type).OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                var child = Schema(property.PropertyType, $"{path}.{name}");
                properties[name] = child;
            }

            visiting.Pop();
            var obj = new JsonObject { ["type"] = "object", ["properties"] = properties };
            if (KnownRequired.TryGetValue(type, out var required) && required.Length > 0)
            {
                obj["required"] = new JsonArray([.. required.Select(r => (JsonNode)r)]);
            }

            if (def.OpaqueBuiltins)
            {
                obj["x-kubernetes-preserve-unknown-fields"] = true;
            }

            return obj;
        }
    }

    public static Type? DictionaryValueType(Type type)
    {
        var dict = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IDictionary<,>)
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>));
        if (dict is null)
        {
            return null;
        }

        var args = dict.GetGenericArguments();
        return args[0] == typeof(string) ? args[1] : throw new NotSupportedException($"map keys must be strings: {type}");
    }

    public static Type? ListItemType(Type type)
    {
        if (type == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(type))
        {
            return null;
        }

        var list = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IList<>)
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IList<>));
        return list?.GetGenericArguments()[0];
    }

    /// <summary>Sorts schema keys alphabetically (controller-gen style) so the output is stable.</summary>
    private static JsonObject Sorted(JsonObject schema)
    {
        var result = new JsonObject();
        foreach (var (key, value) in schema.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            result[key] = value switch
            {
                JsonObject o => Sorted((JsonObject)o.DeepClone()),
                JsonArray a => new JsonArray([.. a.Select(i => i is JsonObject io ? Sorted((JsonObject)io.DeepClone()) : i?.DeepClone())]),
                _ => value?.DeepClone(),
            };
        }

        return result;
    }
}
