using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace KServe.Node.Agent.Sources;

/// <summary>
/// <c>s3://bucket/prefix</c> over AWSSDK.S3, configured from KServe's conventions: <c>AWS_ENDPOINT_URL</c>
/// or <c>S3_ENDPOINT</c> + <c>S3_USE_HTTPS</c>, <c>AWS_DEFAULT_REGION</c>, path-style unless
/// <c>S3_USER_VIRTUAL_BUCKET</c>, <c>awsAnonymousCredential</c>, <c>AWS_ACCESS_KEY_ID</c> /
/// <c>AWS_SECRET_ACCESS_KEY</c>. Keys become paths relative to the prefix; an exact key is one file;
/// zero-size objects and keys ending in '/' are skipped, as KServe's initializer does.
/// Without keys an object is fetched anonymously, unless the agent allows the SDK's default credential chain
/// (<c>--aws-default-credentials</c>): the agent's own identity is not the tenants'. <c>S3_VERIFY_SSL=0</c> and
/// <c>AWS_CA_BUNDLE</c> (a PEM file, or PEM text) apply to the SDK's TLS connections.
/// Also serves <c>gs://</c> through GCS's XML interoperability API (S3-compatible, HMAC keys or anonymous).
/// </summary>
internal sealed class S3Source : IModelSource
{
    private readonly AmazonS3Client _client;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly string _uri;
    private readonly string _deniedHint;

    private S3Source(AmazonS3Client client, string uri, string bucket, string prefix, string deniedHint = "check the credentials")
    {
        _client = client;
        _deniedHint = deniedHint;
        _uri = uri;
        _bucket = bucket;
        _prefix = prefix;
    }

    public static S3Source Create(string uri, SourceSettings s, bool defaultCredentials = false)
    {
        var (bucket, prefix) = ParseBucketUri(uri, "s3");
        var config = BaseConfig(s);
        var endpoint = s.Get("AWS_ENDPOINT_URL") ?? s.Get("AWS_ENDPOINT_URL_S3");
        if (endpoint is null && s.Get("S3_ENDPOINT") is { } host)
        {
            endpoint = host.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || host.StartsWith("https://", StringComparison.OrdinalIgnoreCase)
                ? host
                : (s.Get("S3_USE_HTTPS") == "0" ? "http://" : "https://") + host;
        }
        var region = s.Get("AWS_DEFAULT_REGION") ?? s.Get("AWS_REGION") ?? "us-east-1";
        if (endpoint is not null)
        {
            config.ServiceURL = endpoint;
            config.AuthenticationRegion = region;
            config.ForcePathStyle = !s.Flag("S3_USER_VIRTUAL_BUCKET");
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(region);
            config.ForcePathStyle = false;
        }
        if (s.Flag("S3_USE_ACCELERATE"))
        {
            config.UseAccelerateEndpoint = true;
        }
        AWSCredentials? creds = s.Flag("awsAnonymousCredential") ? new AnonymousAWSCredentials()
            : s.Get("AWS_ACCESS_KEY_ID") is { } id && s.Get("AWS_SECRET_ACCESS_KEY") is { } secret
                ? (s.Get("AWS_SESSION_TOKEN") is { } token ? new SessionAWSCredentials(id, secret, token) : new BasicAWSCredentials(id, secret))
                : null;
        if (creds is null && !defaultCredentials)
        {
            return new S3Source(new AmazonS3Client(new AnonymousAWSCredentials(), config), uri, bucket, prefix,
                "no keys are configured for it, so it was read anonymously (the agent's own AWS identity is used only with --aws-default-credentials)");
        }
        var client = creds is null ? new AmazonS3Client(config) : new AmazonS3Client(creds, config);
        return new S3Source(client, uri, bucket, prefix);
    }

    /// <summary>
    /// <c>gs://bucket/prefix</c> through the XML API at <c>GCS_ENDPOINT</c> (default
    /// https://storage.googleapis.com; <c>STORAGE_EMULATOR_HOST</c> also honoured), signed with HMAC keys
    /// <c>GCS_ACCESS_KEY_ID</c> / <c>GCS_SECRET_ACCESS_KEY</c>, or anonymous for public objects.
    /// </summary>
    public static S3Source CreateForGcs(string uri, SourceSettings s)
    {
        var (bucket, prefix) = ParseBucketUri(uri, "gs");
        var endpoint = s.Get("GCS_ENDPOINT") ?? s.Get("STORAGE_EMULATOR_HOST") ?? "https://storage.googleapis.com";
        if (!endpoint.Contains("://", StringComparison.Ordinal))
        {
            endpoint = "http://" + endpoint;
        }
        AWSCredentials creds;
        if (s.Get("GCS_ACCESS_KEY_ID") is { } id && s.Get("GCS_SECRET_ACCESS_KEY") is { } secret)
        {
            creds = new BasicAWSCredentials(id, secret);
        }
        else if (s.Get("GOOGLE_APPLICATION_CREDENTIALS") is not null)
        {
            throw new DownloadException(FailureReason.AccessDenied,
                $"{uri}: service-account key files are not supported for gs://; use HMAC keys (GCS_ACCESS_KEY_ID, GCS_SECRET_ACCESS_KEY) or public objects");
        }
        else
        {
            creds = new AnonymousAWSCredentials();
        }
        var config = BaseConfig(s);
        config.ServiceURL = endpoint;
        config.AuthenticationRegion = "auto";
        config.ForcePathStyle = true;
        return new S3Source(new AmazonS3Client(creds, config), uri, bucket, prefix);
    }

    private static AmazonS3Config BaseConfig(SourceSettings s)
    {
        var config = new AmazonS3Config
        {
            // Retries are the fetcher's (per chunk, resuming at the byte reached); the SDK's own stay short.
            MaxErrorRetry = 1,
            Timeout = TimeSpan.FromSeconds(60),
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        var verify = s.Flag("S3_VERIFY_SSL", fallback: true);
        if (!verify || s.Get("AWS_CA_BUNDLE") is not null)
        {
            config.HttpClientFactory = new TlsClientFactory(verify ? LoadCaBundle(s.Get("AWS_CA_BUNDLE")!) : null, verify);
        }
        return config;
    }

    /// <summary>CA certificates from a PEM file, or from PEM text (a storage-config secret may carry it inline).</summary>
    internal static X509Certificate2Collection LoadCaBundle(string bundle)
    {
        var roots = new X509Certificate2Collection();
        var inline = bundle.Contains("-----BEGIN", StringComparison.Ordinal);
        var what = inline ? "AWS_CA_BUNDLE (inline PEM)" : $"AWS_CA_BUNDLE {bundle}";
        try
        {
            if (inline)
            {
                roots.ImportFromPem(bundle);
            }
            else
            {
                roots.ImportFromPemFile(bundle);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new DownloadException(FailureReason.InvalidSettings, $"{what} cannot be read as PEM certificates: {e.Message}");
        }
        return roots.Count > 0 ? roots : throw new DownloadException(FailureReason.InvalidSettings, $"{what} holds no PEM certificate");
    }

    /// <summary>
    /// The SDK's HTTP client with the source's TLS settings: the system's trust plus the CA bundle, or (S3_VERIFY_SSL=0)
    /// no verification at all.
    /// </summary>
    private sealed class TlsClientFactory(X509Certificate2Collection? roots, bool verify) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig)
        {
            var handler = new SocketsHttpHandler
            {
                AutomaticDecompression = DecompressionMethods.None,
                MaxConnectionsPerServer = 64,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                ConnectTimeout = TimeSpan.FromSeconds(15),
                SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, cert, _, errors) => Trusted(cert, errors) },
            };
            return new HttpClient(handler) { Timeout = clientConfig.Timeout ?? TimeSpan.FromSeconds(100) };
        }

        private bool Trusted(X509Certificate? cert, SslPolicyErrors errors)
        {
            if (!verify || errors == SslPolicyErrors.None)
            {
                return true;
            }
            if (roots is null || cert is null || errors != SslPolicyErrors.RemoteCertificateChainErrors)
            {
                return false;
            }
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(roots);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            using var leaf = new X509Certificate2(cert);
            return chain.Build(leaf);
        }
    }

    internal static (string Bucket, string Prefix) ParseBucketUri(string uri, string scheme)
    {
        var rest = uri[(scheme.Length + 3)..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? "" : rest[(slash + 1)..];
        if (bucket.Length == 0)
        {
            throw new DownloadException(FailureReason.InvalidUri, $"'{uri}' has no bucket; expected {scheme}://bucket/prefix");
        }
        return (bucket, prefix);
    }

    public void Dispose() => _client.Dispose();

    public async Task<IReadOnlyList<RemoteFile>> ListAsync(CancellationToken ct)
    {
        var files = new List<RemoteFile>();
        string? token = null;
        do
        {
            var resp = await Call(() => _client.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = _bucket,
                Prefix = _prefix.Length == 0 ? null : _prefix,
                ContinuationToken = token,
            }, ct)).ConfigureAwait(false);
            foreach (var o in resp.S3Objects ?? [])
            {
                string relative;
                if (o.Key == _prefix)
                {
                    relative = o.Key.Split('/')[^1];
                }
                else if (_prefix.Length == 0 || _prefix.EndsWith('/'))
                {
                    relative = o.Key[_prefix.Length..];
                }
                else if (o.Key.StartsWith(_prefix + "/", StringComparison.Ordinal))
                {
                    relative = o.Key[(_prefix.Length + 1)..];
                }
                else
                {
                    continue; // "model-evil/x" is not under "model"
                }
                if (o.Key.EndsWith('/') || o.Size is null or 0)
                {
                    continue;
                }
                PathGuard.Validate(relative, $"s3://{_bucket}/{o.Key}");
                files.Add(new RemoteFile(relative, o.Size, null, null, o.ETag, o.Key));
            }
            token = resp.IsTruncated == true ? resp.NextContinuationToken : null;
        }
        while (token is not null);
        if (files.Count == 0 && _prefix.Length > 0)
        {
            throw new DownloadException(FailureReason.NotFound, $"{_uri}: no objects under this prefix");
        }
        // What each ETag means depends on how the object was written: ask each object (a bounded number at once).
        var checksums = new RemoteFile[files.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, files.Count), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct },
            async (i, token) => checksums[i] = await WithChecksumsAsync(files[i], token).ConfigureAwait(false)).ConfigureAwait(false);
        return checksums;
    }

    /// <summary>
    /// The checksums an object really offers. A plain ETag is the MD5 of the bytes only for single-part objects
    /// without SSE-KMS or SSE-C encryption; a multipart ETag (<c>hex-N</c>) is the MD5 of the parts' MD5s, checked
    /// with the part size of part 1 (all parts but the last have that size); a full-object
    /// <c>x-amz-checksum-sha256</c> is taken as the SHA-256. Anything else can be checked by size only.
    /// </summary>
    private async Task<RemoteFile> WithChecksumsAsync(RemoteFile file, CancellationToken ct)
    {
        var etag = file.Version?.Trim('"').ToLowerInvariant();
        GetObjectMetadataResponse head;
        try
        {
            head = await Call(() => _client.GetObjectMetadataAsync(new GetObjectMetadataRequest
            {
                BucketName = _bucket, Key = file.Locator, ChecksumMode = ChecksumMode.ENABLED, EtagToMatch = file.Version,
            }, ct)).ConfigureAwait(false);
        }
        catch (DownloadException e) when (e.Reason == FailureReason.NotFound)
        {
            // SSE-C objects answer HEAD (400) only with their key, which the agent does not hold: nothing vouches for the
            // ETag. (An object deleted since the listing fails at its GET.)
            return file with { Md5 = null };
        }
        var sha256 = head.ChecksumType == ChecksumType.FULL_OBJECT || (head.ChecksumSHA256 is { } c && !c.Contains('-', StringComparison.Ordinal))
            ? FromBase64Sha256(head.ChecksumSHA256) : null;
        var encrypted = head.ServerSideEncryptionMethod == ServerSideEncryptionMethod.AWSKMS
            || head.ServerSideEncryptionMethod == ServerSideEncryptionMethod.AWSKMSDSSE
            || head.ServerSideEncryptionCustomerMethod is { } sc && sc != ServerSideEncryptionCustomerMethod.None;
        if (etag is null || encrypted)
        {
            return file with { Md5 = null, Sha256 = sha256 };
        }
        if (etag.Length == 32 && etag.All(char.IsAsciiHexDigit))
        {
            return file with { Md5 = etag, Sha256 = sha256 };
        }
        if (etag.Split('-') is [{ Length: 32 } hex, var n] && hex.All(char.IsAsciiHexDigit) && int.TryParse(n, out var parts) && parts > 0)
        {
            var part1 = await Call(() => _client.GetObjectMetadataAsync(new GetObjectMetadataRequest
            {
                BucketName = _bucket, Key = file.Locator, PartNumber = 1, EtagToMatch = file.Version,
            }, ct)).ConfigureAwait(false);
            if (part1.PartsCount == parts && part1.ContentLength > 0)
            {
                return file with { Md5 = etag, Sha256 = sha256, PartSize = part1.ContentLength };
            }
        }
        return file with { Md5 = null, Sha256 = sha256 };
    }

    private static string? FromBase64Sha256(string? b64)
    {
        try
        {
            return b64 is null ? null : Convert.FromBase64String(b64) is { Length: 32 } bytes ? Convert.ToHexStringLower(bytes) : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    public async Task<Stream> OpenReadAsync(RemoteFile file, long start, long? endInclusive, CancellationToken ct)
    {
        // If-Match on every GET: an object replaced mid-download answers 412 instead of mixing two versions.
        var req = new GetObjectRequest { BucketName = _bucket, Key = file.Locator, EtagToMatch = file.Version };
        var end = endInclusive ?? (file.Size is { } s ? s - 1 : (long?)null);
        if (start > 0 || endInclusive is not null)
        {
            req.ByteRange = end is { } e ? new ByteRange(start, e) : new ByteRange($"bytes={start}-");
        }
        var resp = await Call(() => _client.GetObjectAsync(req, ct)).ConfigureAwait(false);
        return new ResponseStream(resp.ResponseStream, resp);
    }

    private async Task<T> Call<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (AmazonS3Exception e)
        {
            throw Map(e, e.StatusCode, e.ErrorCode);
        }
        catch (AmazonServiceException e)
        {
            throw Map(e, e.StatusCode, e.ErrorCode);
        }
        catch (AmazonClientException e)
        {
            throw new DownloadException(FailureReason.SourceUnavailable, $"{_uri}: {e.Message}", e);
        }
        catch (HttpRequestException e) when (e.InnerException is System.Security.Authentication.AuthenticationException tls)
        {
            throw new DownloadException(FailureReason.SourceUnavailable,
                $"{_uri}: TLS: {tls.Message} (a private CA goes in AWS_CA_BUNDLE; S3_VERIFY_SSL=0 turns verification off)", e);
        }
        catch (HttpRequestException e)
        {
            throw new DownloadException(FailureReason.SourceUnavailable, $"{_uri}: {e.Message}", e);
        }
    }

    private DownloadException Map(Exception e, HttpStatusCode status, string? code)
    {
        // The SDK's messages name the key id at most, never the secret; still, only the code goes out.
        var s = (int)status;
        return code switch
        {
            "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "AccessDenied" or "InvalidToken" or "ExpiredToken" or "AllAccessDisabled"
                => new(FailureReason.AccessDenied, $"{_uri}: access denied ({code}); {_deniedHint}", e),
            "NoSuchBucket" or "NoSuchKey" => new(FailureReason.NotFound, $"{_uri}: not found ({code})", e),
            _ when s == 412 => new(FailureReason.SourceChanged, $"{_uri}: an object changed while it was downloaded (HTTP 412 to If-Match); the next attempt starts it again", e),
            _ when s is 401 or 403 => new(FailureReason.AccessDenied, $"{_uri}: access denied (HTTP {s}); {_deniedHint}", e),
            _ when s == 404 => new(FailureReason.NotFound, $"{_uri}: not found (HTTP 404)", e),
            _ when s == 0 || s >= 500 || s == 429 || s == 408 => new(FailureReason.SourceUnavailable, $"{_uri}: {(s == 0 ? "no response" : $"HTTP {s}")} {code}".TrimEnd(), e),
            _ => new(FailureReason.NotFound, $"{_uri}: HTTP {s} {code}".TrimEnd(), e),
        };
    }
}
