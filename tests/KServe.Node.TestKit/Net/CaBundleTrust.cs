using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace KServe.Node.TestKit.Net;

/// <summary>
/// An HTTP handler that trusts exactly the CAs of a caBundle, as the API server does when it calls a webhook: the
/// server's certificate must chain to one of them and name the host; any other TLS error still fails.
/// </summary>
public static class CaBundleTrust
{
    /// <summary>Trusts the CAs in <paramref name="caBundlePem"/> (PEM, as a webhook configuration's caBundle holds them).</summary>
    public static SocketsHttpHandler Handler(byte[] caBundlePem)
    {
        ArgumentNullException.ThrowIfNull(caBundlePem);
        var roots = new X509Certificate2Collection();
        roots.ImportFromPem(Encoding.ASCII.GetString(caBundlePem));
        return Handler(roots);
    }

    /// <summary>Trusts <paramref name="roots"/> only.</summary>
    public static SocketsHttpHandler Handler(X509Certificate2Collection roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
        {
            if (cert is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            {
                return false;
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.CustomTrustStore.AddRange(roots);
            return chain.Build(new X509Certificate2(cert));
        };
        return handler;
    }
}
