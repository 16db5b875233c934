using System.Text.Json.Nodes;
using KServe.Node.IsvcController.Model;
using static KServe.Node.IsvcController.Tests.Samples;

namespace KServe.Node.IsvcController.Tests;

public sealed class ValidationTests
{
    private static List<Problem> Problems(JsonObject isvc, IsvcControllerOptions? options = null)
    {
        var (spec, errors) = IsvcReader.Read(isvc);
        return IsvcValidator.Validate(spec, errors, options ?? Options());
    }

    [Fact]
    public void A_plain_gguf_service_is_valid() => Assert.Empty(Problems(Isvc()));

    [Theory]
    [InlineData("kserve-node-llm", "huggingface", true)]
    [InlineData(null, "gguf", true)]
    [InlineData(null, "GGUF", true)]
    [InlineData("kserve-vllmserver", "gguf", false)]
    [InlineData(null, "huggingface", false)]
    public void Only_services_selecting_our_runtime_are_ours(string? runtime, string format, bool ours)
    {
        var spec = Read(Isvc(edit: p =>
        {
            p["model"]!["modelFormat"]!["name"] = format;
            if (runtime is not null)
            {
                p["model"]!["runtime"] = runtime;
            }
        }));
        Assert.Equal(ours, IsvcValidator.IsOurs(spec, Options()));
        Assert.True(IsvcValidator.IsOurs(spec, Options(o => o.All = true)));
    }

    [Fact]
    public void Negative_min_replicas_is_rejected_with_KServes_message()
    {
        var p = Assert.Single(Problems(Isvc(edit: p => p["minReplicas"] = -1)));
        Assert.Equal("'MinReplicas' cannot be less than 0", p.Message);
        Assert.True(p.RejectAtAdmission);
        Assert.Equal(IsvcValidator.InvalidPredictorSpec, p.Reason);
    }

    [Fact]
    public void Negative_max_replicas_is_rejected() =>
        Assert.Contains(Problems(Isvc(edit: p => p["maxReplicas"] = -2)), p => p.Message == "'MaxReplicas' cannot be less than 0" && p.RejectAtAdmission);

    [Fact]
    public void Min_above_max_is_rejected_but_an_unset_max_is_fine()
    {
        var p = Assert.Single(Problems(Isvc(edit: p => { p["minReplicas"] = 3; p["maxReplicas"] = 2; })));
        Assert.Equal("'MinReplicas' cannot be greater than MaxReplicas", p.Message);
        Assert.Empty(Problems(Isvc(edit: p => p["minReplicas"] = 3)));
    }

    [Fact]
    public void A_storage_uri_with_a_scheme_KServe_does_not_know_is_rejected()
    {
        var p = Assert.Single(Problems(Isvc(storageUri: "ftp://host/model.gguf")));
        Assert.True(p.RejectAtAdmission);
        Assert.Contains("StorageUri [ftp://host/model.gguf] is not supported", p.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("hdfs://nn/model")]
    [InlineData("oci://registry/model:1")]
    [InlineData("/local/path")]
    public void A_scheme_KServe_accepts_but_we_cannot_fetch_is_a_condition_not_a_rejection(string uri)
    {
        var p = Assert.Single(Problems(Isvc(storageUri: uri)));
        Assert.False(p.RejectAtAdmission);
        Assert.Equal(IsvcValidator.UnsupportedStorageUri, p.Reason);
        Assert.Contains(uri, p.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_runtime_under_all_is_a_clear_condition()
    {
        var p = Assert.Single(Problems(Isvc(edit: p => p["model"]!["runtime"] = "my-triton"), Options(o => o.All = true)));
        Assert.Equal(IsvcValidator.RuntimeNotRecognized, p.Reason);
        Assert.Contains("\"my-triton\"", p.Message, StringComparison.Ordinal);
        Assert.False(p.RejectAtAdmission);
    }

    [Fact]
    public void A_format_no_runtime_supports_under_all_is_a_clear_condition()
    {
        var p = Assert.Single(Problems(Isvc(edit: p => p["model"]!["modelFormat"]!["name"] = "sklearn"), Options(o => o.All = true)));
        Assert.Equal(IsvcValidator.NoSupportingRuntime, p.Reason);
        Assert.Contains("sklearn", p.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_types_name_the_field_instead_of_throwing()
    {
        var problems = Problems(Isvc(edit: p => { p["minReplicas"] = "two"; p["model"]!["resources"] = "lots"; }));
        Assert.Contains(problems, p => p.Message.StartsWith("spec.predictor.minReplicas: must be an integer", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Message.StartsWith("spec.predictor.model: cannot be read", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Serverless")]
    [InlineData("Knative")]
    public void Knative_modes_are_reported_unsupported(string mode)
    {
        var isvc = Isvc();
        isvc["metadata"]!["annotations"] = new JsonObject { ["serving.kserve.io/deploymentMode"] = mode };
        Assert.Equal(IsvcValidator.UnsupportedDeploymentMode, Assert.Single(Problems(isvc)).Reason);
    }

    [Fact]
    public void Bad_names_and_autoscaler_classes_are_rejected()
    {
        Assert.Contains(Problems(Isvc(name: "9chat")), p => p.RejectAtAdmission && p.Message.Contains("must start with alphabetical", StringComparison.Ordinal));
        var isvc = Isvc();
        isvc["metadata"]!["annotations"] = new JsonObject { ["serving.kserve.io/autoscalerClass"] = "magic" };
        Assert.Contains(Problems(isvc), p => p.RejectAtAdmission && p.Message.Contains("Unknown autoscaler class [magic]", StringComparison.Ordinal));
    }

    [Fact]
    public void KServe_style_yaml_with_fields_outside_the_subset_reads_cleanly()
    {
        var (spec, errors) = IsvcReader.Read(Yaml(KServeStyleYaml));
        Assert.Empty(errors);
        Assert.Empty(IsvcValidator.Validate(spec, errors, Options()));
        Assert.Equal("kserve-node-llm", spec.Predictor.Runtime);
        Assert.Equal(4, spec.Predictor.MaxReplicas);
        Assert.Equal(120, spec.Predictor.TimeoutSeconds);
        Assert.Equal("model-reader", spec.Predictor.PodSpec.ServiceAccountName);
        Assert.Equal(["--ctx-size=8192", "--parallel=4"], spec.Predictor.Container.Args);
    }
}
