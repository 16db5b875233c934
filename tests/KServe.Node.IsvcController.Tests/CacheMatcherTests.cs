using KServe.Node.Api;
using KServe.Node.IsvcController.Placement;
using static KServe.Node.IsvcController.Tests.Samples;

namespace KServe.Node.IsvcController.Tests;

public sealed class CacheMatcherTests
{
    private static readonly CacheView[] s_kserveCaches =
    [
        Cache("model1", "gs://bucket/model", ["gpu1", "gpu2"]),
        Cache("model2", "gs://bucket/model2", ["gpu1", "gpu2"]),
    ];

    // KServe's TestLocalModelAnnotation cases.
    [Theory]
    [InlineData("gs://bucket/model", null, "model1", "model1-gpu1")]
    [InlineData("gs://bucket/model", "gpu2", "model1", "model1-gpu2")]
    [InlineData("gs://bucket/model2", "gpu2", "model2", "model2-gpu2")]
    [InlineData("gs://bucket/model3", null, null, null)]
    [InlineData("gs://bucket/model", "gpu-unknown", null, null)]
    public void Matches_like_KServe(string uri, string? group, string? cache, string? pvc)
    {
        var match = CacheMatcher.Match(uri, group, [], s_kserveCaches);
        Assert.Equal(cache, match?.Cache.Name);
        Assert.Equal(pvc, match?.PvcName);
    }

    [Fact]
    public void Namespace_cache_takes_precedence_over_cluster_cache()
    {
        var nsCache = Cache("ns-model", "gs://bucket/model", ["g"], ns: "team-a");
        var match = CacheMatcher.Match("gs://bucket/model/sub", null, [nsCache], s_kserveCaches);
        Assert.NotNull(match);
        Assert.Equal("ns-model", match.Cache.Name);
        Assert.Equal("team-a/ns-model", match.Cache.StatusKey);
        Assert.Equal("ns-model-g", match.PvcName);
    }

    [Fact]
    public void Node_group_annotation_skips_caches_without_that_group()
    {
        var a = Cache("a", "s3://b/m", ["cpu"]);
        var b = Cache("b", "s3://b/m/", ["gpu"]);
        Assert.Equal("b", CacheMatcher.Match("s3://b/m", "gpu", [], [a, b])?.Cache.Name);
        Assert.Equal("a", CacheMatcher.Match("s3://b/m", null, [], [a, b])?.Cache.Name);
    }

    [Fact]
    public void A_cache_being_deleted_is_not_offered()
    {
        var gone = Cache("gone", "s3://b/m", ["g"]) with { Deleting = true };
        Assert.Null(CacheMatcher.Match("s3://b/m", null, [], [gone]));
    }

    // KServe's TestLocalModelPVC subPath cases (without KServe's trailing slash on an exact match).
    [Theory]
    [InlineData("s3://foo", "s3://foo", "")]
    [InlineData("s3://foo/", "s3://foo", "")]
    [InlineData("s3://foo/model1", "s3://foo", "/model1")]
    [InlineData("s3://foo/model1", "s3://foo/", "/model1")]
    public void Serving_sub_path_is_below_the_cached_folder(string uri, string cached, string sub)
    {
        var match = CacheMatcher.Match(uri, null, [], [Cache("c", cached, ["g"])]);
        Assert.NotNull(match);
        Assert.Equal(sub, match.SubPath);
        Assert.Equal($"models/{StorageKey.Compute(cached)}{sub}", match.VolumeSubPath);
    }
}
