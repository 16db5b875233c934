using System.Text.Json.Nodes;
using k8s.Models;
using KServe.Node.IsvcController.Model;
using KServe.Node.IsvcController.Placement;
using KServe.Node.IsvcController.Status;
using KServe.Node.IsvcController.Webhook;
using static KServe.Node.IsvcController.Tests.Samples;

namespace KServe.Node.IsvcController.Tests;

public sealed class StatusAndWebhookTests
{
    private static readonly DateTimeOffset s_t0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static Condition Get(List<Condition> list, string type) => list.Single(c => c.Type == type);

    [Fact]
    public void Ready_service_has_KServes_urls_and_true_conditions()
    {
        var isvc = Read(Isvc());
        var inputs = new StatusInputs { Isvc = isvc, Deployment = new V1DeploymentStatus { AvailableReplicas = 1 } };
        var status = IsvcStatus.Build(inputs, Options(), s_t0);

        Assert.Equal("http://chat-team-a.example.com", status["url"]!.GetValue<string>());
        Assert.Equal("http://chat-predictor.team-a.svc.cluster.local", status["address"]!["url"]!.GetValue<string>());
        Assert.Equal("http://chat-predictor-team-a.example.com", status["components"]!["predictor"]!["url"]!.GetValue<string>());
        Assert.Equal("Standard", status["deploymentMode"]!.GetValue<string>());
        var conditions = IsvcStatus.Conditions(inputs, Options(), s_t0);
        Assert.Equal(["IngressReady", "ModelCached", "PredictorReady", "Ready"], conditions.Select(c => c.Type));
        Assert.Equal("True", Get(conditions, "Ready").Status);
        Assert.Equal(("False", "NoMatchingCache"), (Get(conditions, "ModelCached").Status, Get(conditions, "ModelCached").Reason));
    }

    [Fact]
    public void Waiting_for_the_cache_explains_itself_in_PredictorReady_and_Ready()
    {
        var cache = Cache("llama", "hf://org/model", ["gpu"], nodes: new() { ["n1"] = "NodeDownloading" });
        var match = CacheMatcher.Match("hf://org/model", null, [], [cache])!;
        var state = CacheReadiness.Compute(match, new Dictionary<string, NodeEntryView>());
        var inputs = new StatusInputs { Isvc = Read(Isvc()), Cache = match, CacheState = state, Deployment = new V1DeploymentStatus() };

        var conditions = IsvcStatus.Conditions(inputs, Options(), s_t0);

        Assert.Equal(("False", CacheState.Downloading), (Get(conditions, "ModelCached").Status, Get(conditions, "ModelCached").Reason));
        Assert.Equal(("False", CacheState.Downloading), (Get(conditions, "Ready").Status, Get(conditions, "Ready").Reason));
        Assert.Contains("0 of 1 nodes", Get(conditions, "PredictorReady").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Transition_time_moves_only_when_a_status_flips()
    {
        var isvc = Read(Isvc());
        var first = IsvcStatus.Conditions(new StatusInputs { Isvc = isvc, Deployment = new V1DeploymentStatus() }, Options(), s_t0);
        var later = s_t0.AddMinutes(5);
        var again = IsvcStatus.Conditions(new StatusInputs { Isvc = isvc, Deployment = new V1DeploymentStatus(), Previous = first }, Options(), later);
        Assert.Equal(s_t0, Get(again, "PredictorReady").LastTransitionTime);
        var ready = IsvcStatus.Conditions(new StatusInputs { Isvc = isvc, Deployment = new V1DeploymentStatus { AvailableReplicas = 1 }, Previous = first }, Options(), later);
        Assert.Equal(later, Get(ready, "PredictorReady").LastTransitionTime);
        Assert.Equal(s_t0, Get(ready, "ModelCached").LastTransitionTime);
    }

    [Fact]
    public void An_invalid_spec_has_no_urls_and_names_the_problem()
    {
        var (spec, errors) = IsvcReader.Read(Isvc(edit: p => p["minReplicas"] = -1));
        var problems = IsvcValidator.Validate(spec, errors, Options());
        var status = IsvcStatus.Build(new StatusInputs { Isvc = spec, Problems = problems }, Options(), s_t0);
        Assert.Null(status["url"]);
        var ready = status["conditions"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == "Ready")!;
        Assert.Equal(("False", "InvalidPredictorSpec", "'MinReplicas' cannot be less than 0"),
            (ready["status"]!.GetValue<string>(), ready["reason"]!.GetValue<string>(), ready["message"]!.GetValue<string>()));
    }

    private static JsonObject Review(JsonObject isvc, string operation = "CREATE") => new()
    {
        ["apiVersion"] = "admission.k8s.io/v1",
        ["kind"] = "AdmissionReview",
        ["request"] = new JsonObject { ["uid"] = "req-1", ["operation"] = operation, ["object"] = isvc },
    };

    [Fact]
    public void Webhook_rejects_what_KServe_rejects_with_its_message()
    {
        var answer = AdmissionReviewer.Review(Review(Isvc(edit: p => { p["minReplicas"] = 3; p["maxReplicas"] = 1; })), Options());
        var response = answer["response"]!;
        Assert.Equal("req-1", response["uid"]!.GetValue<string>());
        Assert.False(response["allowed"]!.GetValue<bool>());
        Assert.Equal("'MinReplicas' cannot be greater than MaxReplicas", response["status"]!["message"]!.GetValue<string>());

        var badScheme = AdmissionReviewer.Review(Review(Isvc(storageUri: "ftp://x/y")), Options())["response"]!;
        Assert.False(badScheme["allowed"]!.GetValue<bool>());
    }

    [Fact]
    public void Webhook_allows_valid_services_conditions_only_problems_and_other_runtimes()
    {
        Assert.True(AdmissionReviewer.Review(Review(Isvc()), Options())["response"]!["allowed"]!.GetValue<bool>());
        // Unknown runtime is a reconcile-time condition in KServe too, not an admission rejection.
        var unknown = Isvc(edit: p => p["model"]!["runtime"] = "my-triton");
        Assert.True(AdmissionReviewer.Review(Review(unknown), Options(o => o.All = true))["response"]!["allowed"]!.GetValue<bool>());
        var notOurs = Isvc(edit: p => { p["model"]!["modelFormat"]!["name"] = "sklearn"; p["minReplicas"] = -1; });
        Assert.True(AdmissionReviewer.Review(Review(notOurs), Options())["response"]!["allowed"]!.GetValue<bool>());
        Assert.True(AdmissionReviewer.Review(Review(Isvc(edit: p => p["minReplicas"] = -1), "DELETE"), Options())["response"]!["allowed"]!.GetValue<bool>());
    }

    [Fact]
    public void Webhook_refuses_a_body_that_is_not_an_admission_review() =>
        Assert.Throws<FormatException>(() => AdmissionReviewer.Review(JsonNode.Parse("""{"kind":"Pod"}"""), Options()));
}
