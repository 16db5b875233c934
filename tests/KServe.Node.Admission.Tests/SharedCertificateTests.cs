using System.Net;
using k8s;
using k8s.Models;
using KServe.Node.Runtime;
using KServe.Node.TestKit.ApiServer;
using KServe.Node.TestKit.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace KServe.Node.Admission.Tests;

/// <summary>
/// Two replicas of a webhook server on one Secret, against the test API server: both serve the certificate the first one
/// created, a client that trusts only the caBundle the configuration holds reaches both, and a renewal by either keeps
/// the bundle and reaches the other within one resync.
/// </summary>
public sealed class SharedCertificateTests : IAsyncLifetime
{
    private const string Namespace = "kserve-node";
    private const string ConfigName = "test-webhooks";
    private static readonly ObjectKey SecretKey = new(Namespace, "webhook-cert");
    private readonly List<IAsyncDisposable> _cleanup = [];
    private TestApiServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await TestApiServer.StartAsync();
        using var admin = _server.CreateClient("admin");
        await new ResourceClient<V1Namespace>(admin).CreateAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = Namespace } });
        await new ResourceClient<V1ValidatingWebhookConfiguration>(admin).CreateAsync(new V1ValidatingWebhookConfiguration
        {
            Metadata = new V1ObjectMeta { Name = ConfigName },
            Webhooks =
            [
                new V1ValidatingWebhook
                {
                    Name = "thing.example.validator", AdmissionReviewVersions = ["v1"], SideEffects = "None",
                    ClientConfig = new Admissionregistrationv1WebhookClientConfig { Service = new Admissionregistrationv1ServiceReference { Name = "svc", NamespaceProperty = Namespace } },
                    MatchConditions = [new V1MatchCondition { Name = "ours", Expression = "has(object.spec)" }],
                },
            ],
        });
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _cleanup.Count - 1; i >= 0; i--)
        {
            await _cleanup[i].DisposeAsync();
        }

        await _server.DisposeAsync();
    }

    private static SharedCertificateOptions Options => new() { Secret = SecretKey, Resync = TimeSpan.FromMilliseconds(200) };

    private static WebhookCertificate Create(TimeSpan validity, TimeProvider time) =>
        WebhookCertificate.Create("svc", Namespace, ["127.0.0.1"], time, validity);

    /// <summary>One replica: loads the shared certificate, serves it over HTTPS on loopback and keeps the caBundle patched.</summary>
    private async Task<(CertificateSource Source, Uri Address)> StartReplicaAsync(string name, TimeProvider time)
    {
        var client = _server.CreateClient(name);
        var source = await SharedCertificate.LoadAsync(client, Options, v => Create(v, time), time, NullLogger.Instance, CancellationToken.None);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0,
            l => l.UseHttps(h => h.ServerCertificateSelector = (_, _) => source.Current.Serving)));
        builder.Services.AddHostedService(_ => new SharedCertificate(client, Options, v => Create(v, time), source, time, NullLogger<SharedCertificate>.Instance));
        builder.Services.AddHostedService(_ => new CaBundlePatcher(client, [ConfigName], source, TimeSpan.FromMilliseconds(200), time, NullLogger<CaBundlePatcher>.Instance));
        var app = builder.Build();
        app.MapGet("/who", () => Results.Text(name));
        await app.StartAsync();
        _cleanup.Add(app);
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        return (source, address);
    }

    /// <summary>Calls a replica as the API server does: trusting exactly the caBundle the configuration holds now.</summary>
    private async Task<string> CallAsync(Uri address)
    {
        using var admin = _server.CreateClient("admin");
        var config = await new ResourceClient<V1ValidatingWebhookConfiguration>(admin).GetAsync(ObjectKey.Cluster(ConfigName));
        var bundle = config!.Webhooks.Single().ClientConfig.CaBundle ?? throw new InvalidOperationException("no caBundle yet");
        using var http = new HttpClient(CaBundleTrust.Handler(bundle)) { Timeout = TimeSpan.FromSeconds(10) };
        return await http.GetStringAsync(new Uri(address, "/who"));
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Replicas_starting_together_share_one_certificate_and_both_pass_the_caBundle()
    {
        // Both replicas race to create the Secret: one wins, the other reads the winner's.
        var loads = await Task.WhenAll(Enumerable.Range(0, 2).Select(i =>
            SharedCertificate.LoadAsync(_server.CreateClient("r" + i), Options, v => Create(v, TimeProvider.System), TimeProvider.System, NullLogger.Instance, CancellationToken.None)));
        Assert.True(loads[0].Current.SameAs(loads[1].Current), "the two replicas loaded different certificates");

        using var admin = _server.CreateClient("admin");
        var secret = await new ResourceClient<V1Secret>(admin).GetAsync(SecretKey);
        Assert.Equal("kubernetes.io/tls", secret!.Type);
        Assert.Equal(["ca.crt", "ca.key", "tls.crt", "tls.key"], secret.Data.Keys.Order(StringComparer.Ordinal));

        var a = await StartReplicaAsync("replica-a", TimeProvider.System);
        var b = await StartReplicaAsync("replica-b", TimeProvider.System);
        Assert.True(a.Source.Current.SameAs(b.Source.Current));
        Assert.True(a.Source.Current.SameAs(loads[0].Current));
        await EventuallyAsync(async () =>
        {
            var config = await new ResourceClient<V1ValidatingWebhookConfiguration>(admin).GetAsync(ObjectKey.Cluster(ConfigName));
            return config!.Webhooks.Single().ClientConfig.CaBundle is { } bundle && bundle.AsSpan().SequenceEqual(a.Source.Current.CaBundlePem);
        }, "the caBundle to be patched");
        // Patching the bundle keeps the rest of the webhook (its matchConditions here) as it was.
        var patched = await new ResourceClient<V1ValidatingWebhookConfiguration>(admin).GetAsync(ObjectKey.Cluster(ConfigName));
        Assert.Equal("has(object.spec)", Assert.Single(patched!.Webhooks.Single().MatchConditions).Expression);
        // Every call the API server would make, to either replica, passes TLS with the bundle it holds.
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("replica-a", await CallAsync(a.Address));
            Assert.Equal("replica-b", await CallAsync(b.Address));
        }

        // A restarted replica serves the same certificate again.
        var restarted = await StartReplicaAsync("replica-a2", TimeProvider.System);
        Assert.True(restarted.Source.Current.SameAs(b.Source.Current));
        Assert.Equal("replica-a2", await CallAsync(restarted.Address));
    }

    [Fact]
    public async Task A_certificate_near_expiry_is_renewed_once_under_the_same_CA_and_every_replica_serves_the_renewal()
    {
        // The clock starts 300 days back, so that after the advance below it is now again and TLS checks (on the real clock) pass.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow.AddDays(-300));
        var a = await StartReplicaAsync("replica-a", time);
        var b = await StartReplicaAsync("replica-b", time);
        var first = a.Source.Current;
        using var admin = _server.CreateClient("admin");
        await EventuallyAsync(async () =>
            (await new ResourceClient<V1ValidatingWebhookConfiguration>(admin).GetAsync(ObjectKey.Cluster(ConfigName)))!.Webhooks.Single().ClientConfig.CaBundle is not null,
            "the caBundle to be patched");
        var bundleBefore = (await new ResourceClient<V1ValidatingWebhookConfiguration>(admin).GetAsync(ObjectKey.Cluster(ConfigName)))!.Webhooks.Single().ClientConfig.CaBundle;

        // 300 days on: within RenewBefore (90 days) of the one-year validity, as both replicas see at their next resync.
        time.Advance(TimeSpan.FromDays(300));
        await EventuallyAsync(() =>
        {
            time.Advance(TimeSpan.FromMilliseconds(250));
            return Task.FromResult(!a.Source.Current.SameAs(first) && !b.Source.Current.SameAs(first));
        }, "both replicas to serve the renewed certificate");

        Assert.True(a.Source.Current.SameAs(b.Source.Current), "the replicas serve different renewals");
        Assert.True(a.Source.Current.NotAfter > first.NotAfter.AddDays(200));
        Assert.Equal(first.CaBundlePem, a.Source.Current.CaBundlePem);
        var secret = await new ResourceClient<V1Secret>(admin).GetAsync(SecretKey);
        Assert.True(WebhookCertificate.FromSecretData(secret!.Data).SameAs(a.Source.Current));
        // The bundle did not change, and calls to both replicas still pass with it.
        var bundleAfter = (await new ResourceClient<V1ValidatingWebhookConfiguration>(admin).GetAsync(ObjectKey.Cluster(ConfigName)))!.Webhooks.Single().ClientConfig.CaBundle;
        Assert.Equal(bundleBefore, bundleAfter);
        Assert.Equal("replica-a", await CallAsync(a.Address));
        Assert.Equal("replica-b", await CallAsync(b.Address));
    }

    [Fact]
    public void An_API_server_that_cannot_be_reached_at_start_is_a_start_up_error_naming_the_Secret()
    {
        using var dead = new Kubernetes(new KubernetesClientConfiguration { Host = "http://127.0.0.1:1" });
        var e = Assert.Throws<KServe.Node.Hosting.Cli.StartupException>(() =>
            SharedCertificate.Load(dead, Options, v => Create(v, TimeProvider.System), TimeProvider.System, NullLogger.Instance));
        Assert.Contains("kserve-node/webhook-cert", e.Message, StringComparison.Ordinal);
        Assert.Contains("create on Secrets", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_Secret_that_holds_no_usable_certificate_is_replaced()
    {
        using var admin = _server.CreateClient("admin");
        await new ResourceClient<V1Secret>(admin).CreateAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = SecretKey.Name, NamespaceProperty = Namespace },
            Type = "kubernetes.io/tls",
            Data = new Dictionary<string, byte[]> { ["tls.crt"] = "not a certificate"u8.ToArray(), ["tls.key"] = "nor a key"u8.ToArray() },
        });
        var source = await SharedCertificate.LoadAsync(_server.CreateClient("r"), Options, v => Create(v, TimeProvider.System), TimeProvider.System, NullLogger.Instance, CancellationToken.None);
        var secret = await new ResourceClient<V1Secret>(admin).GetAsync(SecretKey);
        Assert.True(WebhookCertificate.FromSecretData(secret!.Data).SameAs(source.Current));
    }
}
