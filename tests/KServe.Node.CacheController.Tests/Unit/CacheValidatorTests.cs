using System.Text.Json;
using KServe.Node.CacheController.Webhooks;

namespace KServe.Node.CacheController.Tests.Unit;

/// <summary>In-memory lookups (a fake of the cluster reads; the HTTPS tests use the real ones against the test API server).</summary>
internal sealed class FakeAdmissionLookups : IAdmissionLookups
{
    public List<(string Name, string? Uri)> Caches { get; } = [];
    public Dictionary<string, Dictionary<string, string>> Isvcs { get; } = [];
    public Dictionary<string, Dictionary<string, string>> LlmIsvcs { get; } = [];
    public HashSet<string> Groups { get; } = [];
    public Exception? IsvcError { get; set; }

    public Task<IReadOnlyList<(string Name, string? SourceModelUri)>> ListClusterCachesAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<(string, string?)>>(Caches);

    public Task<IDictionary<string, string>?> GetInferenceServiceLabelsAsync(string ns, string name, CancellationToken ct) =>
        IsvcError is not null ? Task.FromException<IDictionary<string, string>?>(IsvcError)
        : Task.FromResult<IDictionary<string, string>?>(Isvcs.GetValueOrDefault($"{ns}/{name}"));

    public Task<IDictionary<string, string>?> GetLlmInferenceServiceLabelsAsync(string ns, string name, CancellationToken ct) =>
        Task.FromResult<IDictionary<string, string>?>(LlmIsvcs.GetValueOrDefault($"{ns}/{name}"));

    public Task<bool> NodeGroupExistsAsync(string name, CancellationToken ct) => Task.FromResult(Groups.Contains(name));
}

public sealed class CacheValidatorTests
{
    internal static JsonElement CacheJson(string kind, string name, string? ns, string uri, string[] groups,
        string? isvc = null, string? llmIsvc = null, bool deleting = false)
    {
        var meta = new Dictionary<string, object?> { ["name"] = name };
        if (ns is not null)
        {
            meta["namespace"] = ns;
        }
        if (deleting)
        {
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z";
        }
        var status = new Dictionary<string, object?>();
        if (isvc is not null)
        {
            status["inferenceServices"] = new[] { new { @namespace = isvc.Split('/')[0], name = isvc.Split('/')[1] } };
        }
        if (llmIsvc is not null)
        {
            status["llmInferenceServices"] = new[] { new { @namespace = llmIsvc.Split('/')[0], name = llmIsvc.Split('/')[1] } };
        }
        var obj = new Dictionary<string, object?>
        {
            ["apiVersion"] = "serving.kserve.io/v1alpha1",
            ["kind"] = kind,
            ["metadata"] = meta,
            ["spec"] = new { sourceModelUri = uri, modelSize = "1Gi", nodeGroups = groups },
            ["status"] = status,
        };
        return JsonSerializer.SerializeToElement(obj);
    }

    private static AdmissionRequest Req(string op, JsonElement? obj, JsonElement? old = null) =>
        new() { Uid = "u1", Operation = op, Object = obj, OldObject = old };

    private static readonly Dictionary<string, string> UsesIris = new() { [CacheValidator.LocalModelLabel] = "iris" };

    [Fact]
    public async Task UnableToDeleteLocalModelCacheWithActiveIsvc()
    {
        var lookups = new FakeAdmissionLookups();
        lookups.Isvcs["default/foo"] = UsesIris;
        var d = await new CacheValidator(lookups).ValidateClusterCacheAsync(
            Req("DELETE", null, CacheJson("LocalModelCache", "iris", null, "s3://b/m", ["gpu1"], isvc: "default/foo")), default);
        Assert.False(d.Allowed);
        Assert.Equal("LocalModelCache iris is being used by InferenceService foo", d.Message);
    }

    [Fact]
    public async Task UnableToDeleteLocalModelCacheWithActiveLLMIsvc()
    {
        var lookups = new FakeAdmissionLookups();
        lookups.LlmIsvcs["default/llm"] = UsesIris;
        var d = await new CacheValidator(lookups).ValidateClusterCacheAsync(
            Req("DELETE", null, CacheJson("LocalModelCache", "iris", null, "s3://b/m", ["gpu1"], llmIsvc: "default/llm")), default);
        Assert.False(d.Allowed);
        Assert.Equal("LocalModelCache iris is being used by LLMInferenceService llm", d.Message);
    }

    [Fact]
    public async Task Delete_is_allowed_when_listed_services_are_gone_or_moved_on()
    {
        var lookups = new FakeAdmissionLookups();
        lookups.Isvcs["default/moved"] = new() { [CacheValidator.LocalModelLabel] = "other" };
        var v = new CacheValidator(lookups);
        Assert.True((await v.ValidateClusterCacheAsync(Req("DELETE", null, CacheJson("LocalModelCache", "iris", null, "s3://b/m", ["g"], isvc: "default/gone")), default)).Allowed);
        Assert.True((await v.ValidateClusterCacheAsync(Req("DELETE", null, CacheJson("LocalModelCache", "iris", null, "s3://b/m", ["g"], isvc: "default/moved")), default)).Allowed);
        lookups.IsvcError = new HttpRequestException("connection refused");
        var failed = await v.ValidateClusterCacheAsync(Req("DELETE", null, CacheJson("LocalModelCache", "iris", null, "s3://b/m", ["g"], isvc: "default/x")), default);
        Assert.False(failed.Allowed);
        Assert.Contains("connection refused", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnableToCreateLocalModelCacheWithSameStorageURI()
    {
        var lookups = new FakeAdmissionLookups();
        lookups.Caches.Add(("first", "s3://b/m"));
        var d = await new CacheValidator(lookups).ValidateClusterCacheAsync(Req("CREATE", CacheJson("LocalModelCache", "second", null, "s3://b/m", ["g"])), default);
        Assert.False(d.Allowed);
        Assert.Equal(403, d.Code);
        Assert.Equal("LocalModelCache first has the same StorageURI s3://b/m", d.Message);
    }

    [Fact]
    public async Task ValidateUpdate_LocalModelCacheWithSameStorageURI_is_rejected_and_unique_is_allowed()
    {
        var lookups = new FakeAdmissionLookups();
        lookups.Caches.Add(("first", "s3://b/m"));
        lookups.Caches.Add(("second", "s3://b/other"));
        var v = new CacheValidator(lookups);
        Assert.False((await v.ValidateClusterCacheAsync(Req("UPDATE", CacheJson("LocalModelCache", "second", null, "s3://b/m", ["g"])), default)).Allowed);
        Assert.True((await v.ValidateClusterCacheAsync(Req("UPDATE", CacheJson("LocalModelCache", "second", null, "s3://b/other", ["g"])), default)).Allowed);
    }

    [Fact]
    public async Task ValidateUpdate_DeletionBypass()
    {
        var lookups = new FakeAdmissionLookups();
        lookups.Caches.Add(("first", "s3://b/m"));
        var d = await new CacheValidator(lookups).ValidateClusterCacheAsync(
            Req("UPDATE", CacheJson("LocalModelCache", "second", null, "s3://b/m", ["g"], deleting: true)), default);
        Assert.True(d.Allowed);
    }

    [Fact]
    public async Task ValidateUpdate_InvalidObjectType()
    {
        var v = new CacheValidator(new FakeAdmissionLookups());
        var d = await v.ValidateClusterCacheAsync(Req("UPDATE", CacheJson("LocalModelNodeGroup", "x", null, "s3://b/m", ["g"])), default);
        Assert.False(d.Allowed);
        Assert.Equal(400, d.Code);
        Assert.Contains("expected a LocalModelCache", d.Message, StringComparison.Ordinal);
        var ns = await v.ValidateNamespaceCacheAsync(Req("CREATE", JsonSerializer.SerializeToElement("not an object")), default);
        Assert.False(ns.Allowed);
        Assert.Equal(400, ns.Code);
    }

    [Fact]
    public async Task UnableToDeleteLocalModelNamespaceCacheWithActiveIsvc_and_LLMIsvc()
    {
        var lookups = new FakeAdmissionLookups();
        var both = new Dictionary<string, string> { [CacheValidator.LocalModelLabel] = "iris", [CacheValidator.LocalModelNamespaceLabel] = "team" };
        lookups.Isvcs["team/foo"] = both;
        lookups.LlmIsvcs["team/llm"] = both;
        var v = new CacheValidator(lookups);
        var d = await v.ValidateNamespaceCacheAsync(Req("DELETE", null, CacheJson("LocalModelNamespaceCache", "iris", "team", "s3://b/m", ["g"], isvc: "team/foo")), default);
        Assert.Equal("LocalModelNamespaceCache team/iris is being used by InferenceService team/foo", d.Message);
        var l = await v.ValidateNamespaceCacheAsync(Req("DELETE", null, CacheJson("LocalModelNamespaceCache", "iris", "team", "s3://b/m", ["g"], llmIsvc: "team/llm")), default);
        Assert.Equal("LocalModelNamespaceCache team/iris is being used by LLMInferenceService team/llm", l.Message);
        // Only the cluster label (a cluster cache of the same name) does not hold the namespace cache.
        lookups.Isvcs["team/foo"] = new() { [CacheValidator.LocalModelLabel] = "iris" };
        Assert.True((await v.ValidateNamespaceCacheAsync(Req("DELETE", null, CacheJson("LocalModelNamespaceCache", "iris", "team", "s3://b/m", ["g"], isvc: "team/foo")), default)).Allowed);
    }

    [Fact]
    public async Task Namespace_cache_node_groups_must_exist_on_create_and_update()
    {
        var lookups = new FakeAdmissionLookups();
        lookups.Groups.Add("gpu1");
        var v = new CacheValidator(lookups);
        var missing = await v.ValidateNamespaceCacheAsync(Req("CREATE", CacheJson("LocalModelNamespaceCache", "iris", "team", "s3://b/m", ["gpu1", "gpu9"])), default);
        Assert.False(missing.Allowed);
        Assert.StartsWith("NodeGroup gpu9 not found", missing.Message, StringComparison.Ordinal);
        Assert.True((await v.ValidateNamespaceCacheAsync(Req("CREATE", CacheJson("LocalModelNamespaceCache", "iris", "team", "s3://b/m", ["gpu1"])), default)).Allowed);
        Assert.False((await v.ValidateNamespaceCacheAsync(Req("UPDATE", CacheJson("LocalModelNamespaceCache", "iris", "team", "s3://b/m", ["gpu9"])), default)).Allowed);
        Assert.True((await v.ValidateNamespaceCacheAsync(Req("UPDATE", CacheJson("LocalModelNamespaceCache", "iris", "team", "s3://b/m", ["gpu9"], deleting: true)), default)).Allowed);
    }

    [Fact]
    public void AdmissionReview_round_trip_keeps_uid_and_status()
    {
        var body = """{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"abc","operation":"CREATE","object":{"kind":"LocalModelCache"}}}"""u8;
        Assert.True(AdmissionReviews.TryParse(body, out var review, out _));
        Assert.Equal("abc", review!.Request!.Uid);
        var response = JsonDocument.Parse(AdmissionReviews.Respond(review.ApiVersion, "abc", AdmissionDecision.Deny("no"))).RootElement;
        Assert.Equal("AdmissionReview", response.GetProperty("kind").GetString());
        Assert.Equal("abc", response.GetProperty("response").GetProperty("uid").GetString());
        Assert.False(response.GetProperty("response").GetProperty("allowed").GetBoolean());
        Assert.Equal(403, response.GetProperty("response").GetProperty("status").GetProperty("code").GetInt32());
        Assert.False(AdmissionReviews.TryParse("{\"request\":{}}"u8, out _, out var error));
        Assert.Contains("uid", error, StringComparison.Ordinal);
        Assert.False(AdmissionReviews.TryParse("nope"u8, out _, out _));
    }
}
