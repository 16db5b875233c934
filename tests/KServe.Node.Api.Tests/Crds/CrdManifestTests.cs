using System.Text.Json;
using System.Text.Json.Nodes;
using KServe.Node.Api.Serialization;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;

namespace KServe.Node.Api.Tests.Crds;

public sealed class CrdManifestTests
{
    public static TheoryData<string> Kinds => [.. CrdDefinitions.All.Select(d => d.Kind)];

    private static CrdDefinition Def(string kind) => CrdDefinitions.All.Single(d => d.Kind == kind);

    private static JsonObject LoadCrd(CrdDefinition def) =>
        (JsonObject)YamlJson.Parse(File.ReadAllText(Path.Combine(TestFiles.RepoRoot, def.RelativePath)))!;

    private static JsonObject OpenApiSchema(JsonObject crd) =>
        (JsonObject)crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!;

    private static JsonObject SchemaOf(string kind) => OpenApiSchema(LoadCrd(Def(kind)));

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Checked_in_crd_is_exactly_what_the_types_generate(string kind)
    {
        var def = Def(kind);
        var expected = CrdGenerator.ToYaml(CrdGenerator.Generate(def));
        var file = Path.Combine(TestFiles.RepoRoot, def.RelativePath);
        if (Environment.GetEnvironmentVariable("KSERVE_NODE_WRITE_CRDS") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllText(file, expected);
        }

        Assert.True(File.Exists(file), $"{def.RelativePath} is missing; regenerate with KSERVE_NODE_WRITE_CRDS=1");
        Assert.True(
            expected == File.ReadAllText(file),
            $"{def.RelativePath} differs from the C# types; regenerate with KSERVE_NODE_WRITE_CRDS=1 dotnet test tests/KServe.Node.Api.Tests --filter FullyQualifiedName~Checked_in_crd");
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Crd_names_scope_and_subresources_follow_the_spec(string kind)
    {
        var def = Def(kind);
        var crd = LoadCrd(def);
        var spec = crd["spec"]!;

        Assert.Equal("apiextensions.k8s.io/v1", crd["apiVersion"]!.GetValue<string>());
        Assert.Equal($"{def.Plural}.serving.kserve.io", crd["metadata"]!["name"]!.GetValue<string>());
        Assert.Equal("serving.kserve.io", spec["group"]!.GetValue<string>());
        Assert.Equal(kind, spec["names"]!["kind"]!.GetValue<string>());
        Assert.Equal(kind + "List", spec["names"]!["listKind"]!.GetValue<string>());
        Assert.Equal(kind.ToLowerInvariant(), spec["names"]!["singular"]!.GetValue<string>());
        Assert.Equal(kind.ToLowerInvariant() + "s", spec["names"]!["plural"]!.GetValue<string>());

        // Spec §1.1/§1.3/§9: cluster scope except the namespace cache and InferenceService; a status
        // subresource on everything except LocalModelNodeGroup.
        var expectedScope = kind is "LocalModelNamespaceCache" or "InferenceService" ? "Namespaced" : "Cluster";
        Assert.Equal(expectedScope, spec["scope"]!.GetValue<string>());
        var version = spec["versions"]![0]!;
        Assert.Equal(kind == "InferenceService" ? "v1beta1" : "v1alpha1", version["name"]!.GetValue<string>());
        Assert.Equal(kind != "LocalModelNodeGroup", version["subresources"]?["status"] is not null);
    }

    [Theory]
    [InlineData("LocalModelCache")]
    [InlineData("LocalModelNamespaceCache")]
    public void Source_model_uri_is_immutable_and_node_groups_need_one_entry(string kind)
    {
        var spec = SchemaOf(kind)["properties"]!["spec"]!;

        var rule = spec["properties"]!["sourceModelUri"]!["x-kubernetes-validations"]![0]!;
        Assert.Equal("self == oldSelf", rule["rule"]!.GetValue<string>());
        Assert.Equal("StorageUri is immutable", rule["message"]!.GetValue<string>());
        Assert.Equal(1, spec["properties"]!["nodeGroups"]!["minItems"]!.GetValue<int>());
        Assert.Equal(["modelSize", "nodeGroups", "sourceModelUri"], spec["required"]!.AsArray().Select(n => n!.GetValue<string>()));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_schema_node_is_structural(string kind)
    {
        // apiextensions v1 requires a type on every node unless int-or-string or preserve-unknown-fields.
        var problems = new List<string>();
        Walk(SchemaOf(kind), "", problems);
        Assert.Empty(problems);

        static void Walk(JsonObject schema, string path, List<string> problems)
        {
            var typed = schema["type"] is not null
                || schema["x-kubernetes-int-or-string"]?.GetValue<bool>() == true
                || schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;
            if (!typed)
            {
                problems.Add($"{path}: no type");
            }

            if (schema["properties"] is JsonObject props)
            {
                foreach (var (k, v) in props)
                {
                    Walk((JsonObject)v!, $"{path}.{k}", problems);
                }
            }

            if (schema["items"] is JsonObject items)
            {
                Walk(items, path + "[]", problems);
            }

            if (schema["additionalProperties"] is JsonObject additional)
            {
                Walk(additional, path + "{}", problems);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Csharp_properties_and_schema_properties_agree_both_ways(string kind)
    {
        // Independent of the generator: walk the C# type and the checked-in schema side by side.
        var def = Def(kind);
        var schema = SchemaOf(kind);
        var problems = new List<string>();
        Compare(def.KindType, schema, "", def.OpaqueBuiltins, problems);
        Assert.Empty(problems);
    }

    private static void Compare(Type type, JsonObject schema, string path, bool opaqueBuiltins, List<string> problems)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string))
        {
            Expect("string");
            return;
        }

        if (type == typeof(int) || type == typeof(long))
        {
            Expect("integer");
            return;
        }

        if (type == typeof(bool))
        {
            Expect("boolean");
            return;
        }

        if (type == typeof(double))
        {
            Expect("number");
            return;
        }

        if (type == typeof(DateTime))
        {
            Expect("string");
            if (schema["format"]?.GetValue<string>() != "date-time")
            {
                problems.Add($"{path}: DateTime needs format date-time");
            }

            return;
        }

        if (type == typeof(k8s.Models.ResourceQuantity) || type == typeof(k8s.Models.IntOrString))
        {
            if (schema["x-kubernetes-int-or-string"]?.GetValue<bool>() != true)
            {
                problems.Add($"{path}: {type.Name} needs x-kubernetes-int-or-string");
            }

            return;
        }

        if (CrdGenerator.DictionaryValueType(type) is { } valueType)
        {
            Expect("object");
            if (schema["additionalProperties"] is JsonObject additional)
            {
                Compare(valueType, additional, path + "{}", opaqueBuiltins, problems);
            }
            else
            {
                problems.Add($"{path}: map without additionalProperties");
            }

            return;
        }

        if (CrdGenerator.ListItemType(type) is { } itemType)
        {
            Expect("array");
            if (schema["items"] is JsonObject items)
            {
                Compare(itemType, items, path + "[]", opaqueBuiltins, problems);
            }
            else
            {
                problems.Add($"{path}: array without items");
            }

            return;
        }

        if (type == typeof(object))
        {
            return;
        }

        if (path.Length > 0 && (type == typeof(k8s.Models.V1ObjectMeta) || type == typeof(k8s.Models.V1ListMeta)))
        {
            return;
        }

        if (opaqueBuiltins && !CrdGenerator.IsOurs(type))
        {
            if (schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() != true)
            {
                problems.Add($"{path}: opaque {type.Name} must preserve unknown fields");
            }

            return;
        }

        if (path.Length > 0)
        {
            Expect("object");
        }

        var properties = schema["properties"] as JsonObject ?? [];
        var csharp = CrdGenerator.JsonProperties(type).ToDictionary(p => p.Name, p => p.Property);
        foreach (var (name, property) in csharp)
        {
            if (name == "metadata" && path.Length == 0)
            {
                continue;
            }

            if (properties[name] is JsonObject child)
            {
                Compare(property.PropertyType, child, path.Length == 0 ? name : $"{path}.{name}", opaqueBuiltins, problems);
            }
            else
            {
                problems.Add($"{(path.Length == 0 ? name : $"{path}.{name}")}: C# property {type.Name}.{property.Name} is not in the schema");
            }
        }

        foreach (var (name, _) in properties)
        {
            if (!csharp.ContainsKey(name))
            {
                problems.Add($"{(path.Length == 0 ? name : $"{path}.{name}")}: schema property has no C# property on {type.Name}");
            }
        }

        void Expect(string t)
        {
            var actual = schema["type"]?.GetValue<string>();
            if (actual != t)
            {
                problems.Add($"{path}: C# {type.Name} needs schema type {t}, schema says {actual ?? "(none)"}");
            }
        }
    }

    [Fact]
    public void Schema_enums_equal_the_csharp_constants()
    {
        static IEnumerable<string> Enum(JsonNode? node) => node!["enum"]!.AsArray().Select(n => n!.GetValue<string>());

        var cache = SchemaOf("LocalModelCache")["properties"]!["status"]!["properties"]!;
        Assert.Equal(NodeStatus.All, Enum(cache["nodeStatus"]!["additionalProperties"]));
        var nsCache = SchemaOf("LocalModelNamespaceCache")["properties"]!["status"]!["properties"]!;
        Assert.Equal(NodeStatus.All, Enum(nsCache["nodeStatus"]!["additionalProperties"]));
        var node = SchemaOf("LocalModelNode")["properties"]!["status"]!["properties"]!;
        Assert.Equal(ModelStatus.All, Enum(node["modelStatus"]!["additionalProperties"]));
        Assert.Equal(["", "NodeNotReady", "NodeDownloadPending", "NodeDownloading", "NodeDownloaded", "NodeDownloadError"], NodeStatus.All);
        Assert.Equal(["", "ModelDownloadPending", "ModelDownloading", "ModelDownloaded", "ModelDownloadError"], ModelStatus.All);

        var predictor = SchemaOf("InferenceService")["properties"]!["spec"]!["properties"]!["predictor"]!["properties"]!;
        Assert.Equal(ScaleMetric.All, Enum(predictor["scaleMetric"]));
        Assert.Equal(MetricTargetType.All, Enum(predictor["scaleMetricType"]));
        Assert.Equal(ProtocolVersion.All, Enum(predictor["model"]!["properties"]!["protocolVersion"]));
    }

    public static TheoryData<string, string> ValidExamples => new()
    {
        { "localmodelcache.yaml", "LocalModelCache" },
        { "localmodelnamespacecache.yaml", "LocalModelNamespaceCache" },
        { "localmodelnodegroup.yaml", "LocalModelNodeGroup" },
        { "localmodelnode.yaml", "LocalModelNode" },
        { "inferenceservice.yaml", "InferenceService" },
    };

    [Theory]
    [MemberData(nameof(ValidExamples))]
    public void Examples_are_accepted_by_the_crd_schema_and_nothing_is_pruned(string file, string kind)
    {
        var result = SchemaValidator.Validate(YamlJson.Parse(TestFiles.Example(file)), SchemaOf(kind));

        Assert.Empty(result.Errors);
        Assert.Empty(result.Pruned);
    }

    [Fact]
    public void Localmodel_crds_prune_unknown_fields_like_kserves_full_crds()
    {
        var result = SchemaValidator.Validate(YamlJson.Parse(TestFiles.Example("unknown-fields.yaml")), SchemaOf("LocalModelCache"));

        Assert.Empty(result.Errors);
        Assert.Equal(
            ["topLevelExtra", "spec.pvcRef", "spec.imagePullSecrets", "spec.storage.futureStorageOption", "status.copies.stale", "status.inferenceServices[0].uid", "status.futureStatus"],
            result.Pruned);
    }

    [Fact]
    public void InferenceService_crd_prunes_nothing()
    {
        var isvc = YamlJson.Parse(TestFiles.Example("inferenceservice.yaml"))!;
        isvc["spec"]!["predictor"]!["model"]!["somethingNew"] = new JsonObject { ["x"] = 1 };
        isvc["spec"]!["somethingElse"] = true;
        isvc["topLevel"] = "kept";

        var result = SchemaValidator.Validate(isvc, SchemaOf("InferenceService"));

        Assert.Empty(result.Errors);
        Assert.Empty(result.Pruned);
    }

    [Theory]
    [InlineData("invalid/wrong-enum.yaml", "LocalModelNode", "status.modelStatus[llama3]: Unsupported value \"Downloaded\"")]
    [InlineData("invalid/negative-model-size.yaml", "LocalModelCache", "spec.modelSize: should match")]
    [InlineData("invalid/negative-model-size-integer.yaml", "LocalModelCache", "spec.modelSize: should be greater than or equal to 0")]
    [InlineData("invalid/empty-node-groups.yaml", "LocalModelCache", "spec.nodeGroups: should have at least 1 items")]
    [InlineData("invalid/non-string-uri.yaml", "LocalModelCache", "spec.sourceModelUri: must be of type string, got number")]
    [InlineData("invalid/negative-storage-limit.yaml", "LocalModelNodeGroup", "spec.storageLimit: should match")]
    [InlineData("invalid/malformed-quantity.yaml", "LocalModelCache", "spec.modelSize: should match")]
    [InlineData("invalid/isvc-wrong-enum.yaml", "InferenceService", "spec.predictor.scaleMetric: Unsupported value \"gpu\"")]
    [InlineData("invalid/isvc-wrong-enum.yaml", "InferenceService", "spec.predictor.model.protocolVersion: Unsupported value \"v3\"")]
    public void Crd_schema_rejects_bad_input_naming_the_field(string file, string kind, string expectedPrefix)
    {
        var result = SchemaValidator.Validate(YamlJson.Parse(TestFiles.Example(file)), SchemaOf(kind));

        Assert.Contains(result.Errors, e => e.StartsWith(expectedPrefix, StringComparison.Ordinal));
    }

    [Fact]
    public void Crd_schema_requires_the_spec_fields_kserve_requires()
    {
        var cache = JsonNode.Parse("""{"apiVersion":"serving.kserve.io/v1alpha1","kind":"LocalModelCache","metadata":{"name":"x"},"spec":{}}""");
        var node = JsonNode.Parse("""{"spec":{"localModels":[{"nodeGroup":"g"}]}}""");
        var group = JsonNode.Parse("""{"spec":{}}""");

        Assert.Equal(
            ["spec.modelSize: Required value", "spec.nodeGroups: Required value", "spec.sourceModelUri: Required value"],
            SchemaValidator.Validate(cache, SchemaOf("LocalModelCache")).Errors);
        Assert.Equal(
            ["spec.localModels[0].modelName: Required value", "spec.localModels[0].sourceModelUri: Required value"],
            SchemaValidator.Validate(node, SchemaOf("LocalModelNode")).Errors);
        Assert.Equal(
            ["spec.persistentVolumeClaimSpec: Required value", "spec.persistentVolumeSpec: Required value", "spec.storageLimit: Required value"],
            SchemaValidator.Validate(group, SchemaOf("LocalModelNodeGroup")).Errors);
    }

    [Fact]
    public void Kustomizations_list_exactly_the_generated_crds()
    {
        foreach (var folder in new[] { CrdDefinitions.LocalModelFolder, CrdDefinitions.OptionalFolder })
        {
            var kustomization = YamlJson.Parse(File.ReadAllText(Path.Combine(TestFiles.RepoRoot, folder, "kustomization.yaml")))!;
            var listed = kustomization["resources"]!.AsArray().Select(r => r!.GetValue<string>()).Order(StringComparer.Ordinal);
            var generated = CrdDefinitions.All
                .Where(d => Path.GetDirectoryName(d.RelativePath) == folder)
                .Select(d => Path.GetFileName(d.RelativePath))
                .Order(StringComparer.Ordinal);

            Assert.Equal(generated, listed);
        }
    }

    [Fact]
    public void Checked_in_crds_load_as_kubernetes_crd_objects()
    {
        foreach (var def in CrdDefinitions.All)
        {
            var objects = ApiSerializer.DeserializeAll(File.ReadAllText(Path.Combine(TestFiles.RepoRoot, def.RelativePath)));
            var crd = Assert.IsType<k8s.Models.V1CustomResourceDefinition>(Assert.Single(objects));
            Assert.Equal(def.Name, crd.Metadata.Name);
            Assert.NotNull(crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]);
        }
    }

    [Fact]
    public void Printer_columns_point_at_existing_fields()
    {
        foreach (var def in CrdDefinitions.All.Where(d => d.Kind != "InferenceService"))
        {
            var schema = SchemaOf(def.Kind);
            foreach (var column in def.Columns)
            {
                // Filters such as [?(@.type=="Ready")] select array items: reduce them to [] before splitting.
                var path = System.Text.RegularExpressions.Regex.Replace(column.JsonPath, @"\[[^\]]*\]", "[]");
                var segments = path.TrimStart('.').Split('.');
                JsonNode? node = schema;
                foreach (var raw in segments)
                {
                    var name = raw.Split('[')[0];
                    node = node?["properties"]?[name];
                    if (raw.Contains('[', StringComparison.Ordinal))
                    {
                        node = node?["items"];
                    }
                }

                Assert.True(node is not null || column.JsonPath.StartsWith(".metadata", StringComparison.Ordinal), $"{def.Kind} column {column.Name}: {column.JsonPath} is not in the schema");
            }
        }
    }
}
