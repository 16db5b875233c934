using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace KServe.Node.Admission;

/// <summary>
/// A webhook's serving certificate and the CA that the API server trusts it by (the <c>caBundle</c>). Kept as a
/// Secret of type <c>kubernetes.io/tls</c> (<c>tls.crt</c>, <c>tls.key</c>, <c>ca.crt</c>, and <c>ca.key</c> when we
/// issued it) so that every replica serves the same one.
/// </summary>
public sealed class WebhookCertificate : IDisposable
{
    public const string CertKey = "tls.crt";
    public const string PrivateKeyKey = "tls.key";
    public const string CaKey = "ca.crt";
    public const string CaPrivateKeyKey = "ca.key";

    private readonly byte[] _certPem;
    private readonly byte[] _keyPem;
    private readonly byte[]? _caKeyPem;

    private WebhookCertificate(byte[] certPem, byte[] keyPem, byte[] caPem, byte[]? caKeyPem)
    {
        _certPem = certPem;
        _keyPem = keyPem;
        _caKeyPem = caKeyPem;
        CaBundlePem = caPem;
        using var pem = X509Certificate2.CreateFromPem(Encoding.ASCII.GetString(certPem), Encoding.ASCII.GetString(keyPem));
        // Round-trip through PKCS#12 so the key is usable by SslStream on every platform.
        Serving = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        var cas = new X509Certificate2Collection();
        cas.ImportFromPem(Encoding.ASCII.GetString(caPem));
        Ca = cas.Count > 0 ? cas[0] : throw new FormatException($"'{CaKey}' holds no certificate");
    }

    /// <summary>The leaf certificate with its private key, for Kestrel.</summary>
    public X509Certificate2 Serving { get; }

    /// <summary>The CA that issued <see cref="Serving"/> (public part only).</summary>
    public X509Certificate2 Ca { get; }

    /// <summary>The CA in PEM: the <c>caBundle</c> of the webhook configuration (base64 of these bytes on the wire).</summary>
    public byte[] CaBundlePem { get; }

    /// <summary>When the serving certificate expires.</summary>
    public DateTimeOffset NotAfter => Serving.NotAfter.ToUniversalTime();

    /// <summary>
    /// Creates a CA and a serving certificate for the service's DNS names (<c>svc</c>, <c>svc.ns</c>, <c>svc.ns.svc</c>,
    /// <c>svc.ns.svc.cluster.local</c>) plus any extra names or addresses. A CA plus leaf (rather than one self-signed leaf)
    /// keeps strict verifiers happy: the API server's Go TLS stack checks the leaf against the bundle as a root. The leaf is
    /// valid for <c>validity</c>, the CA for <c>caValidity</c> (ten times as long by default), under which renewals issue.
    /// </summary>
    public static WebhookCertificate Create(string serviceName, string serviceNamespace, IEnumerable<string> extraNames,
        TimeProvider time, TimeSpan validity, TimeSpan? caValidity = null)
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
        using var ca = caRequest.CreateSelfSigned(notBefore, now.Add(caValidity ?? validity * 10));

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
        using var leaf = leafRequest.Create(ca, notBefore, notAfter, serial);
        return new WebhookCertificate(Pem(leaf.ExportCertificatePem()), Pem(leafKey.ExportPkcs8PrivateKeyPem()),
            Pem(ca.ExportCertificatePem()), Pem(caKey.ExportPkcs8PrivateKeyPem()));
    }

    /// <summary>
    /// A new serving certificate with the same subject and names, issued by the same CA for <paramref name="validity"/>,
    /// so the <c>caBundle</c> stays valid; null when the CA's key is not held (a certificate we did not issue).
    /// </summary>
    public WebhookCertificate? Renew(TimeProvider time, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(time);
        if (_caKeyPem is null)
        {
            return null;
        }

        using var ca = X509Certificate2.CreateFromPem(Encoding.ASCII.GetString(CaBundlePem), Encoding.ASCII.GetString(_caKeyPem));
        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(Serving.SubjectName, leafKey, HashAlgorithmName.SHA256);
        foreach (var extension in Serving.Extensions)
        {
            if (extension is not X509SubjectKeyIdentifierExtension and not X509AuthorityKeyIdentifierExtension)
            {
                request.CertificateExtensions.Add(extension);
            }
        }

        var now = time.GetUtcNow();
        var notAfter = now.Add(validity) < ca.NotAfter.ToUniversalTime() ? now.Add(validity) : ca.NotAfter.ToUniversalTime();
        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7F;
        using var leaf = request.Create(ca, now.AddMinutes(-5), notAfter, serial);
        return new WebhookCertificate(Pem(leaf.ExportCertificatePem()), Pem(leafKey.ExportPkcs8PrivateKeyPem()), CaBundlePem, _caKeyPem);
    }

    /// <summary>Reads a certificate from a Secret's data (as <see cref="ToSecretData"/> writes it, or as cert-manager does).</summary>
    /// <exception cref="FormatException">A key is missing or does not hold PEM.</exception>
    public static WebhookCertificate FromSecretData(IDictionary<string, byte[]> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        byte[] Get(string key) => data.TryGetValue(key, out var v) && v is { Length: > 0 } ? v : throw new FormatException($"the Secret has no '{key}'");
        try
        {
            return new WebhookCertificate(Get(CertKey), Get(PrivateKeyKey), Get(CaKey), data.TryGetValue(CaPrivateKeyKey, out var k) ? k : null);
        }
        catch (CryptographicException e)
        {
            throw new FormatException($"the Secret's certificate does not load: {e.Message}", e);
        }
    }

    /// <summary>
    /// Loads a PEM certificate and key (e.g. mounted from a cert-manager Secret); the bundle is <paramref name="caFile"/>,
    /// or the certificate itself when none is given.
    /// </summary>
    public static WebhookCertificate FromFiles(string certFile, string keyFile, string? caFile = null)
    {
        var cert = File.ReadAllBytes(certFile);
        return new WebhookCertificate(cert, File.ReadAllBytes(keyFile), caFile is { Length: > 0 } ? File.ReadAllBytes(caFile) : cert, null);
    }

    /// <summary>The Secret data that <see cref="FromSecretData"/> reads back.</summary>
    public Dictionary<string, byte[]> ToSecretData()
    {
        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            [CertKey] = _certPem,
            [PrivateKeyKey] = _keyPem,
            [CaKey] = CaBundlePem,
        };
        if (_caKeyPem is not null)
        {
            data[CaPrivateKeyKey] = _caKeyPem;
        }

        return data;
    }

    /// <summary>Whether <paramref name="other"/> is the same serving certificate.</summary>
    public bool SameAs(WebhookCertificate? other) =>
        other is not null && _certPem.AsSpan().SequenceEqual(other._certPem) && CaBundlePem.AsSpan().SequenceEqual(other.CaBundlePem);

    public void Dispose()
    {
        Serving.Dispose();
        Ca.Dispose();
    }

    private static byte[] Pem(string pem) => Encoding.ASCII.GetBytes(pem + "\n");
}
