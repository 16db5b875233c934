using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using KServe.Node.Api.Serialization;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;
using KServe.Node.TestKit.ApiServer;

namespace KServe.Node.Api.Tests;

/// <summary>
/// The types and the generated CRDs at the real boundary: objects written and read over HTTP with
/// KubernetesClient against the test API server, which validates and prunes with the checked-in CRDs.
/// </summary>
public sealed class ApiServerTests : IAsyncLifetime
{
    private TestApiServer server = null!;
    private Kubernetes client = null!;

    private static CancellationToken Timeout => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    public async ValueTask InitializeAsync()
    {
        server = await TestApiServer.StartAsync(ct: Timeout);
        client = server.CreateClient("api-tests");
        await client.CoreV1.CreateNamespaceAsync(new k8s.Models.V1Namespace { Metadata = new() { Name = "team-a" } }, cancellationToken: Timeout);

        // The CRD folders also hold kustomization.yaml files, so the CRDs are picked out by kind here.
        foreach (var def in Crds.CrdDefinitions.All)
        {
            var text = await File.ReadAllTextAsync(Path.Combine(TestFiles.RepoRoot, def.RelativePath), Timeout);
            foreach (var crd in ApiSerializer.DeserializeAll(text).OfType<k8s.Models.V1CustomResourceDefinition>())
            {
                await client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(crd, cancellationToken: Timeout);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        client.Dispose();
        await server.DisposeAsync();
    }

    private async Task<JsonNode> CreateAsync(IKubernetesObject<k8s.Models.V1ObjectMeta> obj, string plural)
    {
        var group = KServeApi.Group;
        var version = obj.ApiVersion.Split('/')[1];
        object created = obj.Metadata.NamespaceProperty is { } ns
            ? await client.CustomObjects.CreateNamespacedCustomObjectAsync(obj, group, version, ns, plural, cancellationToken: Timeout)
            : await client.CustomObjects.CreateClusterCustomObjectAsync(obj, group, version, plural, cancellationToken: Timeout);
        return JsonNode.Parse(((JsonElement)created).GetRawText())!;
    }

    private static async Task<string> RejectionAsync(Func<Task> write)
    {
        var e = await Assert.ThrowsAsync<HttpOperationException>(write);
        Assert.Equal(422, (int)e.Response.StatusCode);
        return JsonNode.Parse(e.Response.Content)!["message"]!.GetValue<string>();
    }

    public static TheoryData<string, string> Examples => new()
    {
        { "localmodelnodegroup.yaml", LocalModelNodeGroup.KubePluralName },
        { "localmodelcache.yaml", LocalModelCache.KubePluralName },
        { "localmodelnamespacecache.yaml", LocalModelNamespaceCache.KubePluralName },
        { "localmodelnode.yaml", LocalModelNode.KubePluralName },
        { "inferenceservice.yaml", InferenceService.KubePluralName },
    };

    [Theory]
    [MemberData(nameof(Examples))]
    public async Task Examples_are_accepted_and_read_back_without_losing_a_spec_field(string file, string plural)
    {
        var yaml = TestFiles.Example(file);
        var obj = (IKubernetesObject<k8s.Models.V1ObjectMeta>)ApiSerializer.DeserializeObject(yaml);

        var created = await CreateAsync(obj, plural);

        JsonAssert.Equal(YamlJson.Parse(yaml)!["spec"], created["spec"]);
        var typed = ApiSerializer.DeserializeObject(created);
        Assert.IsType(obj.GetType(), typed);
        JsonAssert.Equal(ApiSerializer.ToNode(obj)["spec"], ApiSerializer.ToNode(typed)["spec"]);
    }

    [Fact]
    public async Task Status_written_through_the_status_subresource_keeps_our_additions()
    {
        var node = ApiSerializer.Deserialize<LocalModelNode>(TestFiles.Example("localmodelnode.yaml"));
        var status = node.Status;
        await CreateAsync(node, LocalModelNode.KubePluralName);
        var current = ApiSerializer.FromNode<LocalModelNode>(JsonNode.Parse(((JsonElement)await client.CustomObjects.GetClusterCustomObjectAsync(KServeApi.Group, KServeApi.V1Alpha1, LocalModelNode.KubePluralName, node.Metadata.Name, Timeout)).GetRawText())!);
        current.Status = status;

        var replaced = await client.CustomObjects.ReplaceClusterCustomObjectStatusAsync(current, KServeApi.Group, KServeApi.V1Alpha1, LocalModelNode.KubePluralName, node.Metadata.Name, cancellationToken: Timeout);

        var back = ApiSerializer.FromNode<LocalModelNode>(JsonNode.Parse(((JsonElement)replaced).GetRawText())!);
        Assert.True(ApiSerializer.JsonEquals(status, back.Status));
        Assert.Equal(4920739232, back.Status!.ModelProgress!["llama3"].BytesDone);
    }

    [Fact]
    public async Task Unknown_fields_are_pruned_by_the_localmodel_crds_like_kserves()
    {
        var cache = ApiSerializer.Deserialize<LocalModelCache>(TestFiles.Example("unknown-fields.yaml"));

        var created = await CreateAsync(cache, LocalModelCache.KubePluralName);

        Assert.Null(created["spec"]!["pvcRef"]);
        Assert.Null(created["spec"]!["storage"]!["futureStorageOption"]);
        Assert.Equal("s3://bucket/model", created["spec"]!["sourceModelUri"]!.GetValue<string>());
    }

    [Fact]
    public async Task InferenceService_crd_keeps_fields_outside_the_subset()
    {
        var isvc = ApiSerializer.Deserialize<InferenceService>(TestFiles.Example("inferenceservice.yaml"));
        isvc.Spec.Predictor!.Model!.ExtensionData!["futureContainerField"] = JsonDocument.Parse("{\"a\":[1,2]}").RootElement.Clone();

        var created = await CreateAsync(isvc, InferenceService.KubePluralName);

        JsonAssert.Equal(JsonNode.Parse("{\"a\":[1,2]}"), created["spec"]!["predictor"]!["model"]!["futureContainerField"]);
        Assert.NotNull(created["spec"]!["transformer"]);
    }

    [Theory]
    [InlineData("invalid/empty-node-groups.yaml", "spec.nodeGroups")]
    [InlineData("invalid/negative-model-size.yaml", "spec.modelSize")]
    [InlineData("invalid/negative-model-size-integer.yaml", "spec.modelSize")]
    [InlineData("invalid/non-string-uri.yaml", "spec.sourceModelUri")]
    [InlineData("invalid/malformed-quantity.yaml", "spec.modelSize")]
    public async Task Bad_caches_are_rejected_naming_the_field(string file, string field)
    {
        // Written as raw JSON: the typed path would refuse some of these before they reach the server.
        var body = YamlJson.Parse(TestFiles.Example(file))!;

        var message = await RejectionAsync(() => client.CustomObjects.CreateClusterCustomObjectAsync(body, KServeApi.Group, KServeApi.V1Alpha1, LocalModelCache.KubePluralName, cancellationToken: Timeout));

        Assert.Contains(field, message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Negative_storage_limit_and_wrong_isvc_enums_are_rejected()
    {
        var group = YamlJson.Parse(TestFiles.Example("invalid/negative-storage-limit.yaml"))!;
        var groupMessage = await RejectionAsync(() => client.CustomObjects.CreateClusterCustomObjectAsync(group, KServeApi.Group, KServeApi.V1Alpha1, LocalModelNodeGroup.KubePluralName, cancellationToken: Timeout));
        Assert.Contains("spec.storageLimit", groupMessage, StringComparison.Ordinal);

        var isvc = YamlJson.Parse(TestFiles.Example("invalid/isvc-wrong-enum.yaml"))!;
        var isvcMessage = await RejectionAsync(() => client.CustomObjects.CreateNamespacedCustomObjectAsync(isvc, KServeApi.Group, KServeApi.V1Beta1, "team-a", InferenceService.KubePluralName, cancellationToken: Timeout));
        Assert.Contains("spec.predictor.scaleMetric", isvcMessage, StringComparison.Ordinal);
        Assert.Contains("spec.predictor.model.protocolVersion", isvcMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_model_status_enum_is_rejected_on_the_status_subresource()
    {
        var node = ApiSerializer.Deserialize<LocalModelNode>(TestFiles.Example("localmodelnode.yaml"));
        node.Status = null;
        await CreateAsync(node, LocalModelNode.KubePluralName);
        var bad = YamlJson.Parse(TestFiles.Example("invalid/wrong-enum.yaml"))!;

        var message = await RejectionAsync(() => client.CustomObjects.ReplaceClusterCustomObjectStatusAsync(bad, KServeApi.Group, KServeApi.V1Alpha1, LocalModelNode.KubePluralName, node.Metadata.Name, cancellationToken: Timeout));

        Assert.Contains("status.modelStatus", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Source_model_uri_is_immutable()
    {
        var cache = ApiSerializer.Deserialize<LocalModelCache>(TestFiles.Example("localmodelcache.yaml"));
        cache.Status = null;
        var created = ApiSerializer.FromNode<LocalModelCache>(await CreateAsync(cache, LocalModelCache.KubePluralName));
        created.Spec.SourceModelUri = "hf://meta-llama/Meta-Llama-3-70B";

        var message = await RejectionAsync(() => client.CustomObjects.ReplaceClusterCustomObjectAsync(created, KServeApi.Group, KServeApi.V1Alpha1, LocalModelCache.KubePluralName, created.Metadata.Name, cancellationToken: Timeout));

        Assert.Contains("StorageUri is immutable", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Crd_files_also_load_through_the_test_kits_kubernetes_yaml_installer()
    {
        // Other test projects install CRDs with TestApiServer.ApplyCrdsFromDirectoryAsync (KubernetesYaml);
        // the generated files must read the same way there. The folder is copied without its kustomization.
        var dir = Directory.CreateTempSubdirectory("kserve-node-crds-");
        try
        {
            foreach (var def in Crds.CrdDefinitions.All)
            {
                File.Copy(Path.Combine(TestFiles.RepoRoot, def.RelativePath), Path.Combine(dir.FullName, Path.GetFileName(def.RelativePath)));
            }

            await using var other = await TestApiServer.StartAsync(ct: Timeout);
            await other.ApplyCrdsFromDirectoryAsync(dir.FullName, Timeout);
            using var otherClient = other.CreateClient("api-tests");
            var empty = YamlJson.Parse(TestFiles.Example("invalid/empty-node-groups.yaml"))!;

            var e = await Assert.ThrowsAsync<HttpOperationException>(() => otherClient.CustomObjects.CreateClusterCustomObjectAsync(empty, KServeApi.Group, KServeApi.V1Alpha1, LocalModelCache.KubePluralName, cancellationToken: Timeout));
            Assert.Equal(422, (int)e.Response.StatusCode);
            Assert.Contains("spec.nodeGroups", e.Response.Content, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
