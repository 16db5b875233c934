using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using k8s.Models;
using KServe.Node.Admission;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;
using KServe.Node.CacheController.Tests.Unit;
using KServe.Node.CacheController.Webhooks;
using KServe.Node.Runtime;
using KServe.Node.TestKit.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace KServe.Node.CacheController.Tests.Integration;

/// <summary>The validating webhooks, answered over HTTPS by the running controller (spec §1.8, §6.3).</summary>
public sealed class WebhookTests
{
    private static HttpClient TrustingClient(Harness h) =>
        new(CaBundleTrust.Handler(h.App.Services.GetRequiredService<CertificateSource>().Current.CaBundlePem)) { BaseAddress = h.WebhookBase };

    /// <summary>A client that trusts exactly the caBundle the stored webhook configuration holds, as the API server does.</summary>
    private static async Task<HttpClient> ApiServerLikeClientAsync(Harness h, Uri webhookBase)
    {
        var stored = await h.For<V1ValidatingWebhookConfiguration>().GetAsync(ObjectKey.Cluster("localmodelcache.serving.kserve.io"));
        return new HttpClient(CaBundleTrust.Handler(stored!.Webhooks[0].ClientConfig.CaBundle)) { BaseAddress = webhookBase };
    }

    private static async Task<(HttpStatusCode Code, JsonElement Response)> ReviewAsync(HttpClient http, string path, string operation,
        JsonElement? obj, JsonElement? old = null)
    {
        var review = new
        {
            apiVersion = "admission.k8s.io/v1",
            kind = "AdmissionReview",
            request = new { uid = Guid.NewGuid().ToString(), operation, @object = obj, oldObject = old },
        };
        using var content = new StringContent(JsonSerializer.Serialize(review), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        using var response = await http.PostAsync(path, content);
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return (response.StatusCode, default);
        }

        using var doc = JsonDocument.Parse(body);
        return (response.StatusCode, doc.RootElement.GetProperty("response").Clone());
    }

    [Fact]
    public async Task Cluster_cache_reviews_over_HTTPS_allow_unique_and_deny_duplicate_uris_and_deletion_in_use()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        await h.For<LocalModelCache>().CreateAsync(Harness.Cache("first", ["gpu1"], "s3://b/m"));
        using var http = TrustingClient(h);
        const string path = WebhookEndpoints.ClusterCachePath;

        var (code, dup) = await ReviewAsync(http, path, "CREATE", CacheValidatorTests.CacheJson("LocalModelCache", "second", null, "s3://b/m", ["gpu1"]));
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.False(dup.GetProperty("allowed").GetBoolean());
        Assert.Equal("LocalModelCache first has the same StorageURI s3://b/m", dup.GetProperty("status").GetProperty("message").GetString());
        Assert.Equal(403, dup.GetProperty("status").GetProperty("code").GetInt32());

        var (_, unique) = await ReviewAsync(http, path, "CREATE", CacheValidatorTests.CacheJson("LocalModelCache", "second", null, "s3://b/other", ["gpu1"]));
        Assert.True(unique.GetProperty("allowed").GetBoolean());

        await h.For<InferenceService>().CreateAsync(Consumers.Isvc("default", "foo", "first"));
        var old = CacheValidatorTests.CacheJson("LocalModelCache", "first", null, "s3://b/m", ["gpu1"], isvc: "default/foo");
        var (_, inUse) = await ReviewAsync(http, path, "DELETE", null, old);
        Assert.False(inUse.GetProperty("allowed").GetBoolean());
        Assert.Equal("LocalModelCache first is being used by InferenceService foo", inUse.GetProperty("status").GetProperty("message").GetString());

        await h.For<InferenceService>().DeleteAsync(new ObjectKey("default", "foo"));
        var (_, free) = await ReviewAsync(http, path, "DELETE", null, old);
        Assert.True(free.GetProperty("allowed").GetBoolean());
    }

    [Fact]
    public async Task Namespace_cache_reviews_over_HTTPS_check_node_groups()
    {
        await using var h = await Harness.StartAsync();
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        using var http = TrustingClient(h);
        const string path = WebhookEndpoints.NamespaceCachePath;

        var (_, missing) = await ReviewAsync(http, path, "CREATE", CacheValidatorTests.CacheJson("LocalModelNamespaceCache", "m", "team", "s3://b/m", ["gpu1", "nope"]));
        Assert.False(missing.GetProperty("allowed").GetBoolean());
        Assert.StartsWith("NodeGroup nope not found", missing.GetProperty("status").GetProperty("message").GetString(), StringComparison.Ordinal);

        var (_, ok) = await ReviewAsync(http, path, "UPDATE", CacheValidatorTests.CacheJson("LocalModelNamespaceCache", "m", "team", "s3://b/m", ["gpu1"]));
        Assert.True(ok.GetProperty("allowed").GetBoolean());

        var (_, wrongKind) = await ReviewAsync(http, path, "CREATE", CacheValidatorTests.CacheJson("LocalModelCache", "m", null, "s3://b/m", ["gpu1"]));
        Assert.False(wrongKind.GetProperty("allowed").GetBoolean());
        Assert.Equal(400, wrongKind.GetProperty("status").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task A_body_that_is_not_an_AdmissionReview_gets_400_with_the_reason()
    {
        await using var h = await Harness.StartAsync();
        using var http = TrustingClient(h);
        using var content = new StringContent("{\"kind\":\"AdmissionReview\"}", Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        using var response = await http.PostAsync(WebhookEndpoints.ClusterCachePath, content);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("no request", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_replicas_serve_one_certificate_and_answer_every_review_the_caBundle_trusts_also_after_a_restart()
    {
        await using var h = await Harness.StartAsync(beforeController: h => h.For<V1ValidatingWebhookConfiguration>().CreateAsync(Configuration()));
        await h.App.Services.GetRequiredService<CaBundlePatcher>().Done.WaitAsync(TimeSpan.FromSeconds(20));
        await h.For<LocalModelNodeGroup>().CreateAsync(Harness.Group("gpu1", "gpu1"));
        var review = CacheValidatorTests.CacheJson("LocalModelCache", "second", null, "s3://b/other", ["gpu1"]);

        async Task AssertBothAnswer(WebApplication other)
        {
            var otherBase = other.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
                .Select(a => new Uri(a)).First(a => a.Scheme == "https");
            foreach (var webhookBase in new[] { h.WebhookBase, otherBase })
            {
                using var http = await ApiServerLikeClientAsync(h, webhookBase);
                for (var i = 0; i < 3; i++)
                {
                    var (code, response) = await ReviewAsync(http, WebhookEndpoints.ClusterCachePath, "CREATE", review);
                    Assert.Equal(HttpStatusCode.OK, code);
                    Assert.True(response.GetProperty("allowed").GetBoolean());
                }
            }
        }

        var second = await h.StartReplicaAsync();
        try
        {
            Assert.True(second.Services.GetRequiredService<CertificateSource>().Current.SameAs(h.App.Services.GetRequiredService<CertificateSource>().Current));
            await second.Services.GetRequiredService<CaBundlePatcher>().Done.WaitAsync(TimeSpan.FromSeconds(20));
            await AssertBothAnswer(second);
        }
        finally
        {
            await second.StopAsync();
            await second.DisposeAsync();
        }

        // The second replica restarts: it serves the same certificate again, and the bundle still trusts both.
        var restarted = await h.StartReplicaAsync();
        try
        {
            await restarted.Services.GetRequiredService<CaBundlePatcher>().Done.WaitAsync(TimeSpan.FromSeconds(20));
            await AssertBothAnswer(restarted);
        }
        finally
        {
            await restarted.StopAsync();
            await restarted.DisposeAsync();
        }
    }

    private static V1ValidatingWebhookConfiguration Configuration() => new()
    {
        ApiVersion = "admissionregistration.k8s.io/v1",
        Kind = "ValidatingWebhookConfiguration",
        Metadata = new V1ObjectMeta { Name = "localmodelcache.serving.kserve.io" },
        Webhooks =
        [
            new V1ValidatingWebhook
            {
                Name = "localmodelcache.kserve-webhook-server.validator", AdmissionReviewVersions = ["v1"], SideEffects = "None",
                ClientConfig = new Admissionregistrationv1WebhookClientConfig { Service = new Admissionregistrationv1ServiceReference { Name = "svc", NamespaceProperty = "kserve-node" } },
            },
        ],
    };

    [Fact]
    public async Task The_CA_bundle_is_patched_into_the_webhook_configuration_at_start()
    {
        var configuration = new V1ValidatingWebhookConfiguration
        {
            ApiVersion = "admissionregistration.k8s.io/v1",
            Kind = "ValidatingWebhookConfiguration",
            Metadata = new V1ObjectMeta { Name = "localmodelcache.serving.kserve.io" },
            Webhooks =
            [
                Hook("localmodelcache.kserve-webhook-server.validator", WebhookEndpoints.ClusterCachePath),
                Hook("localmodelnamespacecache.kserve-webhook-server.validator", WebhookEndpoints.NamespaceCachePath),
            ],
        };
        await using var h = await Harness.StartAsync(beforeController: h => h.For<V1ValidatingWebhookConfiguration>().CreateAsync(configuration));
        await h.App.Services.GetRequiredService<CaBundlePatcher>().Done.WaitAsync(TimeSpan.FromSeconds(20));
        var stored = await h.For<V1ValidatingWebhookConfiguration>().GetAsync(ObjectKey.Cluster("localmodelcache.serving.kserve.io"));
        var expected = h.App.Services.GetRequiredService<CertificateSource>().Current.CaBundlePem;
        Assert.Equal(2, stored!.Webhooks.Count);
        Assert.All(stored.Webhooks, w => Assert.Equal(expected, w.ClientConfig.CaBundle));

        static V1ValidatingWebhook Hook(string name, string path) => new()
        {
            Name = name,
            AdmissionReviewVersions = ["v1"],
            SideEffects = "None",
            FailurePolicy = "Fail",
            ClientConfig = new Admissionregistrationv1WebhookClientConfig
            {
                Service = new Admissionregistrationv1ServiceReference { Name = "kserve-node-cache-controller-webhook", NamespaceProperty = "kserve-node", Path = path },
            },
        };
    }

    [Fact]
    public async Task Health_and_metrics_answer_over_HTTP()
    {
        await using var h = await Harness.StartAsync();
        using var http = new HttpClient { BaseAddress = h.MetricsBase };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/readyz")).StatusCode);
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("# TYPE", metrics, StringComparison.Ordinal);
    }
}
