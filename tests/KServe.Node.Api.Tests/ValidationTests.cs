using KServe.Node.Api.Serialization;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;

namespace KServe.Node.Api.Tests;

public sealed class ValidationTests
{
    private static IReadOnlyList<ValidationError> ValidateExample(string file) =>
        ApiSerializer.DeserializeObject(TestFiles.Example(file)) switch
        {
            LocalModelCache c => c.Validate(),
            LocalModelNamespaceCache c => c.Validate(),
            LocalModelNodeGroup g => g.Validate(),
            LocalModelNode n => n.Validate(),
            InferenceService i => i.Validate(),
            var o => throw new InvalidOperationException($"no validator for {o.GetType()}"),
        };

    [Theory]
    [InlineData("localmodelcache.yaml")]
    [InlineData("localmodelnamespacecache.yaml")]
    [InlineData("localmodelnodegroup.yaml")]
    [InlineData("localmodelnode.yaml")]
    [InlineData("inferenceservice.yaml")]
    [InlineData("unknown-fields.yaml")]
    public void Valid_examples_have_no_errors(string file)
    {
        Assert.Empty(ValidateExample(file));
    }

    [Theory]
    [InlineData("invalid/wrong-enum.yaml", "status.modelStatus[llama3]: unsupported value \"Downloaded\" (supported: \"\", ModelDownloadPending, ModelDownloading, ModelDownloaded, ModelDownloadError)")]
    [InlineData("invalid/negative-model-size.yaml", "spec.modelSize: must not be negative")]
    [InlineData("invalid/negative-model-size-integer.yaml", "spec.modelSize: must not be negative")]
    [InlineData("invalid/empty-node-groups.yaml", "spec.nodeGroups: must contain at least one node group")]
    [InlineData("invalid/unsupported-scheme.yaml", "spec.sourceModelUri: unsupported scheme \"ftp\" (supported: s3, gs, hf, http, https, pvc, file, oci, oci+native, oci+fetch, hdfs, webhdfs, modelscope)")]
    [InlineData("invalid/negative-storage-limit.yaml", "spec.storageLimit: must not be negative")]
    [InlineData("invalid/isvc-wrong-enum.yaml", "spec.predictor.scaleMetric: unsupported value \"gpu\" (supported: cpu, memory, concurrency, rps)")]
    [InlineData("invalid/isvc-wrong-enum.yaml", "spec.predictor.model.protocolVersion: unsupported value \"v3\" (supported: v1, v2, grpc-v1, grpc-v2)")]
    public void Invalid_examples_report_the_field_and_the_problem(string file, string expected)
    {
        var errors = ValidateExample(file).Select(e => e.ToString()).ToList();

        Assert.Contains(expected, errors);
    }

    [Theory]
    [InlineData("invalid/non-string-uri.yaml", "spec.sourceModelUri", "spec.sourceModelUri: expected a string, got a number (42)")]
    [InlineData("invalid/malformed-quantity.yaml", "spec.modelSize", "spec.modelSize: \"sixteen gigabytes\" is not a valid quantity (e.g. 500Gi, 251Mi, 10G)")]
    public void Wrongly_typed_values_fail_deserialization_naming_the_field(string file, string path, string message)
    {
        var e = Assert.Throws<ApiSerializationException>(() => ApiSerializer.Deserialize<LocalModelCache>(TestFiles.Example(file)));

        Assert.Equal(path, e.Path);
        Assert.Equal(message, e.Message);
    }

    [Theory]
    [InlineData("spec:\n  nodeGroups: gpu\n", "spec.nodeGroups: expected an array, got a string (\"gpu\")")]
    [InlineData("spec:\n  modelSize: true\n", "spec.modelSize: expected a quantity (string or integer), got a boolean")]
    [InlineData("spec:\n  storage:\n    parameters:\n      type: [s3]\n", "spec.storage.parameters.type: expected a string, got an array")]
    [InlineData("status:\n  copies:\n    total: many\n", "status.copies.total: expected an integer, got a string (\"many\")")]
    [InlineData("spec: [1]\n", "spec: expected an object, got an array")]
    public void Type_errors_name_the_nested_field(string yaml, string message)
    {
        var e = Assert.Throws<ApiSerializationException>(() => ApiSerializer.Deserialize<LocalModelCache>(yaml));

        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Malformed_yaml_and_unknown_kinds_get_clear_errors()
    {
        var bad = Assert.Throws<ApiSerializationException>(() => ApiSerializer.Deserialize<LocalModelCache>("spec:\n  a: [1, 2\n"));
        Assert.StartsWith("invalid YAML at line", bad.Message, StringComparison.Ordinal);

        var dup = Assert.Throws<ApiSerializationException>(() => ApiSerializer.Deserialize<LocalModelCache>("spec:\n  modelSize: 1Gi\n  modelSize: 2Gi\n"));
        Assert.Contains("duplicate key", dup.Message, StringComparison.OrdinalIgnoreCase);

        var kind = Assert.Throws<ApiSerializationException>(() => ApiSerializer.DeserializeObject("apiVersion: serving.kserve.io/v1alpha1\nkind: ClusterLocalModel\n"));
        Assert.Equal("kind: unknown kind \"ClusterLocalModel\" in apiVersion \"serving.kserve.io/v1alpha1\"", kind.Message);

        var empty = Assert.Throws<ApiSerializationException>(() => ApiSerializer.Deserialize<LocalModelCache>("# nothing\n"));
        Assert.Equal("the document is empty", empty.Message);
    }

    [Fact]
    public void Missing_required_fields_are_reported()
    {
        var errors = new LocalModelCache().Validate().Select(e => e.ToString()).ToList();
        Assert.Equal(
            ["spec.sourceModelUri: required", "spec.modelSize: required", "spec.nodeGroups: must contain at least one node group"],
            errors);

        var group = new LocalModelNodeGroup().Validate().Select(e => e.ToString()).ToList();
        Assert.Equal(
            ["spec.storageLimit: required", "spec.persistentVolumeSpec: required", "spec.persistentVolumeClaimSpec: required"],
            group);

        var node = new LocalModelNode
        {
            Spec = new() { LocalModels = [new() { SourceModelUri = "s3://b/m" }, new() { ModelName = "m", SourceModelUri = "s3://b/m" }, new() { ModelName = "m", SourceModelUri = "gs://b/m" }] },
        };
        Assert.Equal(
            [
                "spec.localModels[0].modelName: required",
                "spec.localModels[2]: duplicate entry for status key \"m\" (modelName and namespace must be unique)",
            ],
            node.Validate().Select(e => e.ToString()));
    }

    [Fact]
    public void Empty_node_group_names_are_reported_by_index()
    {
        var spec = new LocalModelCacheSpec { SourceModelUri = "s3://b/m", ModelSize = new("1Gi"), NodeGroups = ["a", ""] };

        Assert.Equal(["spec.nodeGroups[1]: must not be empty"], spec.Validate().Select(e => e.ToString()));
    }

    [Fact]
    public void Predictor_replica_bounds_and_names_are_checked()
    {
        var isvc = new InferenceService
        {
            Metadata = new() { Name = "x", Annotations = new Dictionary<string, string> { [KServeAnnotations.DeploymentMode] = "Batch" } },
            Spec = new()
            {
                Predictor = new()
                {
                    MinReplicas = 3,
                    MaxReplicas = 2,
                    Name = "Blue_1",
                    AutoScaling = new() { Metrics = [new() { Type = "Resource" }, new() { Type = "Gpu" }] },
                    Model = new() { StorageUri = "ftp://x/y" },
                },
            },
        };

        Assert.Equal(
            [
                "metadata.annotations[serving.kserve.io/deploymentMode]: unsupported value \"Batch\" (supported: Standard, Knative, ModelMesh, RawDeployment, Serverless)",
                "spec.predictor.minReplicas: must not be greater than maxReplicas (2)",
                "spec.predictor.name: must be a DNS label (lower-case alphanumerics and '-', starting and ending with an alphanumeric)",
                "spec.predictor.autoScaling.metrics[0].resource: required when type is Resource",
                "spec.predictor.autoScaling.metrics[1].type: unsupported value \"Gpu\" (supported: Resource, External, PodMetric)",
                "spec.predictor.model.modelFormat: required",
                "spec.predictor.model.storageUri: unsupported scheme \"ftp\" (supported: s3, gs, hf, http, https, pvc, file, oci, oci+native, oci+fetch, hdfs, webhdfs, modelscope)",
            ],
            isvc.Validate().Select(e => e.ToString()));

        Assert.Equal(["spec.predictor: required"], new InferenceService().Validate().Select(e => e.ToString()));
    }

    [Fact]
    public void Local_paths_are_accepted_as_isvc_storage_uris_like_kserve_does()
    {
        var model = new PredictorSpec { Model = new() { ModelFormat = new() { Name = "gguf" }, StorageUri = "/mnt/models/llama" } };

        Assert.Empty(model.Validate());
    }

    [Fact]
    public void ThrowIfInvalid_carries_every_error()
    {
        var e = Assert.Throws<ApiValidationException>(() => new LocalModelCache().Validate().ThrowIfInvalid());

        Assert.Equal(3, e.Errors.Count);
        Assert.StartsWith("spec.sourceModelUri: required; spec.modelSize: required", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Status_condition_values_are_checked()
    {
        var status = new LocalModelCacheStatus
        {
            Conditions =
            [
                new() { Type = "Ready", Status = "Yes" },
                new() { Type = "Ready", Status = "True" },
            ],
            ObservedGeneration = -1,
        };

        Assert.Equal(
            [
                "status.observedGeneration: must not be negative",
                "status.conditions[0].status: unsupported value \"Yes\" (supported: True, False, Unknown)",
                "status.conditions[1].type: duplicate condition type \"Ready\"",
            ],
            status.Validate().Select(e => e.ToString()));
    }
}
