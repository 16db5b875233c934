using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KServe.Node.IsvcController.Webhook;

/// <summary>
/// The self-signed serving certificate of the admission webhook, created at start (architecture: admission
/// webhooks). Its PEM is the caBundle the webhook configuration must carry; cert-manager can replace both.
/// </summary>
internal static class WebhookCertificate
{
    /// <summary>A certificate for the webhook Service's DNS names (and loopback, for local runs and tests).</summary>
    public static X509Certificate2 Create(string serviceName, string serviceNamespace, TimeProvider time, TimeSpan validity)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentException.ThrowIfNullOrEmpty(serviceNamespace);
        ArgumentNullException.ThrowIfNull(time);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={serviceName}.{serviceNamespace}.svc", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(serviceName);
        san.AddDnsName($"{serviceName}.{serviceNamespace}");
        san.AddDnsName($"{serviceName}.{serviceNamespace}.svc");
        san.AddDnsName($"{serviceName}.{serviceNamespace}.svc.cluster.local");
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = time.GetUtcNow();
        using var cert = request.CreateSelfSigned(now.AddMinutes(-5), now.Add(validity));
        // Round trip through PKCS#12 so that the private key is usable by the TLS stack on every platform.
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>The PEM of the certificate: the caBundle of the webhook configuration.</summary>
    public static string CaBundlePem(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return certificate.ExportCertificatePem() + "\n";
    }
}
