using System.Text;
using k8s;
using k8s.Models;
using KServe.Node.Agent.Kubernetes;
using KServe.Node.Agent.Sources;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.TestKit.ApiServer;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.Agent.Tests;

/// <summary>
/// Whose credentials a cache entry gets, read over real HTTP from the test API server: a cluster cache gets the job
/// namespace's, a namespace cache only those an admin released to its namespace.
/// </summary>
public sealed class CredentialTests
{
    private const string JobNamespace = "kserve-localmodel-jobs";

    [Fact]
    public async Task A_namespace_cache_gets_job_namespace_credentials_only_where_they_are_released_to_its_namespace()
    {
        await using var api = await TestApiServer.StartAsync();
        using var client = api.CreateClient("node-agent");
        await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new() { Name = JobNamespace } });
        static Dictionary<string, byte[]> Keys(string id) => new()
        {
            ["AWS_ACCESS_KEY_ID"] = Encoding.UTF8.GetBytes(id), ["AWS_SECRET_ACCESS_KEY"] = Encoding.UTF8.GetBytes("secret-" + id),
        };
        await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new() { Name = "admin-keys" }, Data = Keys("AKIDADMIN") }, JobNamespace);
        await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new() { Name = "team-a-keys" }, Data = Keys("AKIDTEAMA") }, JobNamespace);
        await client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount
        {
            Metadata = new() { Name = "admin-sa" },
            Secrets = [new V1ObjectReference { Name = "admin-keys" }],
        }, JobNamespace);
        await client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount
        {
            Metadata = new() { Name = "team-a-sa", Annotations = new Dictionary<string, string> { [CredentialResolver.NamespacesAnnotation] = "team-a, team-c" } },
            Secrets = [new V1ObjectReference { Name = "team-a-keys" }],
        }, JobNamespace);
        await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new() { Name = "storage-config", Annotations = new Dictionary<string, string> { [CredentialResolver.NamespacesAnnotation] = "*" } },
            Data = new Dictionary<string, byte[]> { ["shared"] = """{"type":"s3","access_key_id":"AKIDSHARED","secret_access_key":"s"}"""u8.ToArray() },
        }, JobNamespace);
        var resolver = new CredentialResolver(client, new AgentNodeSettings { NodeName = "n", JobNamespace = JobNamespace }, NullLogger<CredentialResolver>.Instance);

        async Task<string?> KeyId(string? ns, string? sa = null, string? storageKey = null)
        {
            var entry = new LocalModelInfo
            {
                ModelName = "m", Namespace = ns, SourceModelUri = "s3://b/m", ServiceAccountName = sa,
                Storage = storageKey is null ? null : new LocalModelStorageSpec { Key = storageKey },
            };
            return (await resolver.ResolveAsync(entry, SourceSettings.Empty, CancellationToken.None)).Get("AWS_ACCESS_KEY_ID");
        }

        // A cluster cache (an admin's object) gets what KServe's download Job would get.
        Assert.Equal("AKIDADMIN", await KeyId(null, "admin-sa"));
        // A tenant naming the admin's ServiceAccount gets nothing from it; one released to it works.
        Assert.Null(await KeyId("team-a", "admin-sa"));
        Assert.Equal("AKIDTEAMA", await KeyId("team-a", "team-a-sa"));
        Assert.Equal("AKIDTEAMA", await KeyId("team-c", "team-a-sa"));
        Assert.Null(await KeyId("team-b", "team-a-sa"));
        // storage.key: the storage-config Secret, released here to every namespace.
        Assert.Equal("AKIDSHARED", await KeyId("team-b", storageKey: "shared"));
        Assert.Equal("AKIDSHARED", await KeyId(null, storageKey: "shared"));
    }
}
