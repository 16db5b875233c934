using System.Security.Cryptography.X509Certificates;
using KServe.Node.Admission;

namespace KServe.Node.Admission.Tests;

public sealed class WebhookCertificateTests
{
    [Fact]
    public void Serving_certificate_chains_to_the_bundle_and_names_the_service()
    {
        using var cert = WebhookCertificate.Create("localmodel-webhook-server-service", "kserve", ["127.0.0.1"], TimeProvider.System, TimeSpan.FromDays(365));
        Assert.True(cert.Serving.HasPrivateKey);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var bundle = X509Certificate2.CreateFromPem(System.Text.Encoding.ASCII.GetString(cert.CaBundlePem));
        chain.ChainPolicy.CustomTrustStore.Add(bundle);
        Assert.True(chain.Build(cert.Serving), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
        Assert.True(cert.Serving.MatchesHostname("localmodel-webhook-server-service.kserve.svc"));
        Assert.True(cert.Serving.MatchesHostname("localmodel-webhook-server-service.kserve.svc.cluster.local"));
        Assert.True(cert.Serving.MatchesHostname("127.0.0.1"));
        Assert.False(cert.Serving.MatchesHostname("other.kserve.svc"));
    }
}
