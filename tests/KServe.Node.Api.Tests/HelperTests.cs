using KServe.Node.Api.V1Alpha1;

namespace KServe.Node.Api.Tests;

public sealed class StorageKeyTests
{
    // Spec §1.7: "Take the SHA-256 of the exact sourceModelUri bytes, hex-encode it in lowercase, and keep
    // the first 16 characters. There is no normalisation: s3://foo and s3://foo/ give different keys."
    // Expected values computed independently (Python hashlib.sha256(uri.encode()).hexdigest()[:16]).
    [Theory]
    [InlineData("s3://foo", "83fbff445b51876f")]
    [InlineData("s3://foo/", "e65e626ad747873c")]
    [InlineData("hf://meta-llama/Meta-Llama-3-8B", "c41ae4f29d692d55")]
    [InlineData("gs://kfserving-examples/models/sklearn/1.0/model", "379edc91f9c1bc7b")]
    [InlineData("s3://mybucket/mymodel", "89da10faf446bbf1")]
    [InlineData("hf://Qwen/Qwen2-0.5B-Instruct", "a7631b3fe62115e0")]
    [InlineData("", "e3b0c44298fc1c14")]
    [InlineData("s3://bücket/模型", "0fdf40a468819abe")]
    public void Storage_key_is_the_first_16_hex_characters_of_sha256_of_the_uri_bytes(string uri, string expected)
    {
        Assert.Equal(expected, StorageKey.Compute(uri));
    }

    [Fact]
    public void Storage_key_is_stable_distinct_and_16_characters_long()
    {
        // KServe TestGetStorageKey / TestGetStorageKeyConsistency.
        Assert.Equal(StorageKey.Compute("s3://a/b"), StorageKey.Compute("s3://a/b"));
        Assert.NotEqual(StorageKey.Compute("s3://a/b"), StorageKey.Compute("s3://a/c"));
        Assert.All(new[] { "x", "s3://bucket/a/very/long/path/" + new string('x', 500) }, u => Assert.Equal(16, StorageKey.Compute(u).Length));
    }

    [Fact]
    public void Storage_key_agrees_with_sha256_computed_here()
    {
        var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("s3://foo"u8))[..16];
        Assert.Equal(expected, StorageKey.Compute("s3://foo"));
    }

    [Theory]
    [InlineData("83fbff445b51876f", true)]
    [InlineData("83FBFF445B51876F", false)]
    [InlineData("83fbff445b51876", false)]
    [InlineData("83fbff445b51876g", false)]
    [InlineData(null, false)]
    public void IsValid_accepts_only_16_lower_case_hex_characters(string? key, bool valid)
    {
        Assert.Equal(valid, StorageKey.IsValid(key));
    }
}

public sealed class StorageUriMatchTests
{
    // Spec §1.7 MatchStorageURI: "1. Strip one trailing / from both strings. 2. The result is true if the
    // strings are equal, or if storageUri starts with cachedUri and the next character is /.
    // 3. gs://b/model-evil therefore does not match gs://b/model. 4. This is plain string comparison: no
    // scheme parsing and no case folding. It also works for non-URI strings such as foo:bar:baz."
    // Cases from KServe's TestLocalModelCache_MatchStorageURI and TestMatchStorageURI (spec §6.3).
    [Theory]
    [InlineData("gs://bucket/model", "gs://bucket/model", true)]
    [InlineData("gs://bucket/model/", "gs://bucket/model", true)]
    [InlineData("gs://bucket/model", "gs://bucket/model/", true)]
    [InlineData("gs://bucket/model", "gs://bucket/model/modelfiles/", true)]
    [InlineData("gs://bucket/model", "gs://bucket/model/model.pt", true)]
    [InlineData("gs://bucket/model", "gs://bucket/model2", false)]
    [InlineData("gs://bucket/model", "gs://bucket/foo", false)]
    [InlineData("gs://b/model", "gs://b/model-evil", false)]
    [InlineData("gs://bucket/model", "gs://bucket/model-evil", false)]
    [InlineData("gs://bucket/model", "gs://bucket", false)]
    [InlineData("foo:bar:baz", "foo:bar:baz", true)]
    [InlineData("foo:bar:baz", "foo:bar:qux", false)]
    [InlineData("GS://bucket/model", "gs://bucket/model", false)]
    [InlineData("S3://b/m", "s3://b/m", false)]
    [InlineData("s3://foo/", "s3://foo/model1", true)]
    [InlineData("gs://bucket/model", "gs://bucket/model//x", true)]
    public void Matches_follows_kserve_MatchStorageURI(string cacheUri, string storageUri, bool expected)
    {
        Assert.Equal(expected, StorageUri.Matches(cacheUri, storageUri));
    }

    // Spec §4.3 worked subPath examples (KServe TestLocalModelPVC); K(x) is the storage key of x.
    [Theory]
    [InlineData("s3://foo", "s3://foo", "models/83fbff445b51876f/")]
    [InlineData("s3://foo/", "s3://foo", "models/83fbff445b51876f/")]
    [InlineData("s3://foo/model1", "s3://foo", "models/83fbff445b51876f/model1")]
    [InlineData("s3://foo/model1", "s3://foo/", "models/e65e626ad747873c/model1")]
    public void Serving_subpath_matches_the_spec_examples(string storageUri, string cacheUri, string expected)
    {
        Assert.Equal(expected, StorageUri.ServingSubPath(cacheUri, storageUri));
    }
}

public sealed class StorageUriParseTests
{
    [Theory]
    [InlineData("s3://bucket/prefix/model", StorageScheme.S3, "bucket", "prefix/model", null)]
    [InlineData("s3://bucket", StorageScheme.S3, "bucket", "", null)]
    [InlineData("gs://kfserving-examples/models/sklearn/1.0/model", StorageScheme.Gs, "kfserving-examples", "models/sklearn/1.0/model", null)]
    [InlineData("hf://meta-llama/Meta-Llama-3-8B", StorageScheme.Hf, "meta-llama", "Meta-Llama-3-8B", null)]
    [InlineData("hf://Qwen/Qwen2-0.5B-Instruct-GGUF:main", StorageScheme.Hf, "Qwen", "Qwen2-0.5B-Instruct-GGUF", "main")]
    [InlineData("https://example.com:8443/models/a.gguf", StorageScheme.Https, "example.com:8443", "models/a.gguf", null)]
    [InlineData("http://10.0.0.1/m", StorageScheme.Http, "10.0.0.1", "m", null)]
    [InlineData("pvc://claim/models/x", StorageScheme.Pvc, "claim", "models/x", null)]
    [InlineData("oci://registry.example.com/models/llama:1", StorageScheme.Oci, "registry.example.com", "models/llama:1", null)]
    [InlineData("oci+native://r/m", StorageScheme.OciNative, "r", "m", null)]
    [InlineData("webhdfs://nn/path", StorageScheme.WebHdfs, "nn", "path", null)]
    public void Parse_splits_known_schemes(string uri, StorageScheme scheme, string authority, string path, string? revision)
    {
        var info = StorageUri.Parse(uri);

        Assert.Equal(new StorageUriInfo(uri, scheme, authority, path, revision), info);
    }

    [Fact]
    public void Hf_repository_id_and_scheme_name_are_exposed()
    {
        var info = StorageUri.Parse("hf://owner/repo:v1");
        Assert.Equal("owner/repo", info.RepositoryId);
        Assert.Equal("hf", info.SchemeName);
        Assert.Equal("oci+fetch", StorageUri.SchemeName(StorageScheme.OciFetch));
    }

    [Theory]
    [InlineData("ftp://example.com/model", "unsupported scheme \"ftp\"")]
    [InlineData("S3://bucket/model", "unsupported scheme \"S3\"")]
    [InlineData("/local/path", "missing scheme")]
    [InlineData("", "must not be empty")]
    [InlineData("s3://", "missing bucket")]
    [InlineData("s3:///key", "missing bucket")]
    [InlineData("gs:///x", "missing bucket")]
    [InlineData("hf://owner", "exactly two path parts")]
    [InlineData("hf://owner/repo/extra", "exactly two path parts")]
    [InlineData("hf:///repo", "exactly two path parts")]
    [InlineData("hf://owner/repo:", "non-empty repository and revision")]
    [InlineData("https://", "not a valid https URL")]
    [InlineData("pvc:///path", "missing claim name")]
    [InlineData("oci://", "missing location")]
    public void Parse_rejects_bad_uris_with_a_clear_reason(string uri, string reason)
    {
        var e = Assert.Throws<StorageUriException>(() => StorageUri.Parse(uri));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.False(StorageUri.TryParse(uri, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_scheme_error_lists_the_supported_ones()
    {
        var e = Assert.Throws<StorageUriException>(() => StorageUri.Parse("ftp://x/y"));
        Assert.Contains("s3, gs, hf, http, https, pvc", e.Message, StringComparison.Ordinal);
    }
}

public sealed class NameTests
{
    [Fact]
    public void Status_key_is_the_name_for_cluster_caches_and_namespace_slash_name_otherwise()
    {
        // Spec §1.5 "Status key = modelName when namespace is empty, otherwise {namespace}/{modelName}."
        Assert.Equal("iris", StatusKey.For("iris", null));
        Assert.Equal("iris", StatusKey.For("iris", ""));
        Assert.Equal("ns1/iris", StatusKey.For("iris", "ns1"));
        Assert.NotEqual(StatusKey.For("iris", "ns1"), StatusKey.For("iris", "ns2"));
        Assert.Equal(("ns1", "iris"), StatusKey.Parse("ns1/iris"));
        Assert.Equal(((string?)null, "iris"), StatusKey.Parse("iris"));
        Assert.Equal("ns/m", new LocalModelInfo { ModelName = "m", Namespace = "ns" }.StatusKey);
    }

    [Fact]
    public void Labels_annotations_and_finalizers_have_the_spec_names()
    {
        // Spec §4.2 and §10 item 6.
        Assert.Equal("internal.serving.kserve.io/localmodel", KServeLabels.LocalModel);
        Assert.Equal("internal.serving.kserve.io/localmodel-namespace", KServeLabels.LocalModelNamespace);
        Assert.Equal("internal.serving.kserve.io/localmodel-sourceuri", KServeAnnotations.LocalModelSourceUri);
        Assert.Equal("internal.serving.kserve.io/localmodel-pvc-name", KServeAnnotations.LocalModelPvcName);
        Assert.Equal("internal.serving.kserve.io/storage-initializer-sourceuri", KServeAnnotations.StorageInitializerSourceUri);
        Assert.Equal("serving.kserve.io/disable-localmodel", KServeAnnotations.DisableLocalModel);
        Assert.Equal("serving.kserve.io/nodegroup", KServeAnnotations.NodeGroup);
        Assert.Equal("storage.kserve.io/readonly", KServeAnnotations.StorageReadOnly);
        Assert.Equal("localmodel.kserve.io/finalizer", KServeFinalizers.LocalModelCache);
        Assert.Equal("localmodelnamespacecache.kserve.io/finalizer", KServeFinalizers.LocalModelNamespaceCache);
    }

    [Fact]
    public void Placement_label_is_model_kserve_node_io_slash_storage_key()
    {
        Assert.Equal("model.kserve-node.io/83fbff445b51876f", PlacementLabels.ForStorageKey("83fbff445b51876f"));
        Assert.Equal("model.kserve-node.io/83fbff445b51876f", PlacementLabels.ForUri("s3://foo"));
        Assert.Equal("83fbff445b51876f", PlacementLabels.TryGetStorageKey("model.kserve-node.io/83fbff445b51876f"));
        Assert.Null(PlacementLabels.TryGetStorageKey("kubernetes.io/hostname"));
        Assert.Null(PlacementLabels.TryGetStorageKey("model.kserve-node.io/not-a-key"));
        var e = Assert.Throws<ArgumentException>(() => PlacementLabels.ForStorageKey("s3://foo"));
        Assert.Contains("not a storage key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Object_names_follow_the_spec_naming_scheme()
    {
        // Spec §2.6.
        Assert.Equal("iris-gpu1-download", KServeNames.DownloadPv("iris", "gpu1"));
        Assert.Equal("iris-gpu1", KServeNames.DownloadPvc("iris", "gpu1"));
        Assert.Equal("m-gpu1-ns-download", KServeNames.NamespaceDownloadVolume("m", "gpu1", "ns"));
        Assert.Equal("iris2-gpu1-default", KServeNames.ServingPv("iris2", "gpu1", "default"));
        Assert.Equal("iris2-gpu1", KServeNames.ServingPvc("iris2", "gpu1"));
        Assert.Equal("models/83fbff445b51876f", KServeNames.ModelSubPath(StorageKey.Compute("s3://foo")));
    }

    [Fact]
    public void Model_status_maps_to_node_status_as_the_controller_does()
    {
        // Spec §1.6 mapping table.
        Assert.Equal(NodeStatus.NodeDownloadPending, ModelStatus.ToNodeStatus(ModelStatus.ModelDownloadPending));
        Assert.Equal(NodeStatus.NodeDownloading, ModelStatus.ToNodeStatus(ModelStatus.ModelDownloading));
        Assert.Equal(NodeStatus.NodeDownloaded, ModelStatus.ToNodeStatus(ModelStatus.ModelDownloaded));
        Assert.Equal(NodeStatus.NodeDownloadError, ModelStatus.ToNodeStatus(ModelStatus.ModelDownloadError));
        Assert.Equal(NodeStatus.NodeDownloadPending, ModelStatus.ToNodeStatus(null));
        Assert.Equal(NodeStatus.NodeDownloadPending, ModelStatus.ToNodeStatus(""));
        Assert.Equal(NodeStatus.NodeDownloadPending, ModelStatus.ToNodeStatus("Whatever"));
    }

    [Fact]
    public void Copies_count_the_whole_node_status_map_and_omit_zeros()
    {
        var copies = ModelCopies.FromNodeStatus(new Dictionary<string, string>
        {
            ["a"] = NodeStatus.NodeDownloaded,
            ["b"] = NodeStatus.NodeNotReady,
            ["c"] = NodeStatus.NodeDownloaded,
        });

        Assert.Equal(2, copies.Available);
        Assert.Equal(3, copies.Total);
        Assert.Null(copies.Failed);
        Assert.Equal("""{"available":2,"total":3}""", Serialization.ApiSerializer.SerializeJson(copies));
    }

    [Fact]
    public void Deployment_mode_normalises_legacy_names()
    {
        Assert.Equal("Standard", V1Beta1.DeploymentMode.Normalize("RawDeployment"));
        Assert.Equal("Standard", V1Beta1.DeploymentMode.Normalize(null));
        Assert.Equal("Knative", V1Beta1.DeploymentMode.Normalize("Serverless"));
        Assert.Equal("ModelMesh", V1Beta1.DeploymentMode.Normalize("ModelMesh"));
    }
}
