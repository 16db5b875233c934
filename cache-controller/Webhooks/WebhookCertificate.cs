using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace KServe.Node.CacheController.Webhooks;

/// <summary>A serving certificate for the webhook server and the CA bundle that the API server trusts it by.</summary>
internal sealed class WebhookCertificate : IDisposable
{
    private WebhookCertificate(X509Certificate2 serving, X509Certificate2 ca)
    {
        Serving = serving;
        Ca = ca;
    }

    /// <summary>The leaf certificate with its private key, for Kestrel.</summary>
    public X509Certificate2 Serving { get; }

    /// <summary>The self-signed CA that issued <see cref="Serving"/> (public part only).</summary>
    public X509Certificate2 Ca { get; }

    /// <summary>The CA in PEM: the <c>caBundle</c> of the webhook configuration (base64 of these bytes on the wire).</summary>
    public byte[] CaBundlePem => Encoding.ASCII.GetBytes(Ca.ExportCertificatePem() + "\n");

    /// <summary>
    /// Creates a CA and a serving certificate for the service's DNS names (<c>svc</c>, <c>svc.ns</c>, <c>svc.ns.svc</c>,
    /// <c>svc.ns.svc.cluster.local</c>) plus any extra names or addresses. A CA plus leaf (rather than one self-signed leaf)
    /// keeps strict verifiers happy: the API server's Go TLS stack checks the leaf against the bundle as a root.
    /// </summary>
    public static WebhookCertificate Create(string serviceName, string serviceNamespace, IEnumerable<string> extraNames,
        TimeProvider time, TimeSpan validity)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentException.ThrowIfNullOrEmpty(serviceNamespace);
        ArgumentNullException.ThrowIfNull(extraNames);
        ArgumentNullException.ThrowIfNull(time);
        var now = time.GetUtcNow();
        var notBefore = now.AddMinutes(-5);
        var notAfter = now.Add(validity);

        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest($"CN={serviceName}-ca", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var caWithKey = caRequest.CreateSelfSigned(notBefore, notAfter.AddDays(1));

        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var dns = $"{serviceName}.{serviceNamespace}.svc";
        var leafRequest = new CertificateRequest($"CN={dns}", leafKey, HashAlgorithmName.SHA256);
        leafRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        leafRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(serviceName);
        san.AddDnsName($"{serviceName}.{serviceNamespace}");
        san.AddDnsName(dns);
        san.AddDnsName($"{dns}.cluster.local");
        foreach (var extra in extraNames)
        {
            if (IPAddress.TryParse(extra, out var ip))
            {
                san.AddIpAddress(ip);
            }
            else if (!string.IsNullOrWhiteSpace(extra))
            {
                san.AddDnsName(extra);
            }
        }

        leafRequest.CertificateExtensions.Add(san.Build());
        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7F;
        using var leafPublic = leafRequest.Create(caWithKey, notBefore, notAfter, serial);
        using var leafWithKey = leafPublic.CopyWithPrivateKey(leafKey);
        // Round-trip through PKCS#12 so the key is usable by SslStream on every platform.
        var serving = X509CertificateLoader.LoadPkcs12(leafWithKey.Export(X509ContentType.Pkcs12), null);
        var ca = X509CertificateLoader.LoadCertificate(caWithKey.Export(X509ContentType.Cert));
        return new WebhookCertificate(serving, ca);
    }

    /// <summary>Loads a PEM certificate and key (e.g. mounted from a cert-manager secret); the bundle is the certificate's issuer chain as given.</summary>
    public static WebhookCertificate FromFiles(string certFile, string keyFile)
    {
        using var pem = X509Certificate2.CreateFromPemFile(certFile, keyFile);
        var serving = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        var ca = X509CertificateLoader.LoadCertificate(pem.Export(X509ContentType.Cert));
        return new WebhookCertificate(serving, ca);
    }

    public void Dispose()
    {
        Serving.Dispose();
        Ca.Dispose();
    }
}
