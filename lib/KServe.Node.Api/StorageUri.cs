using System.Diagnostics.CodeAnalysis;

namespace KServe.Node.Api;

/// <summary>The storage schemes KServe's controller accepts for a model URI (spec §5.1).</summary>
public enum StorageScheme
{
    /// <summary><c>s3://{bucket}/{prefix}</c></summary>
    S3,
    /// <summary><c>gs://{bucket}/{prefix}</c></summary>
    Gs,
    /// <summary><c>hf://{owner}/{repo}[:{revision}]</c></summary>
    Hf,
    /// <summary><c>http://host/path</c></summary>
    Http,
    /// <summary><c>https://host/path</c></summary>
    Https,
    /// <summary><c>pvc://{claim}/{path}</c></summary>
    Pvc,
    /// <summary><c>file://path</c></summary>
    File,
    /// <summary><c>oci://…</c></summary>
    Oci,
    /// <summary><c>oci+native://…</c></summary>
    OciNative,
    /// <summary><c>oci+fetch://…</c></summary>
    OciFetch,
    /// <summary><c>hdfs://…</c></summary>
    Hdfs,
    /// <summary><c>webhdfs://…</c></summary>
    WebHdfs,
    /// <summary><c>modelscope://{owner}/{model}[:{revision}]</c></summary>
    ModelScope,
}

/// <summary>A parsed model storage URI. Which fields are set depends on the scheme.</summary>
/// <param name="Uri">The URI exactly as given.</param>
/// <param name="Scheme">The scheme.</param>
/// <param name="Authority">The part after <c>scheme://</c> up to the first <c>/</c>: the bucket (s3, gs),
/// host[:port] (http, https), claim (pvc), owner (hf, modelscope), registry (oci) or name node (hdfs).</param>
/// <param name="Path">Everything after that first <c>/</c> (may be empty). For hf it is the repository
/// name without the revision.</param>
/// <param name="Revision">hf and modelscope only: the text after <c>:</c> in the repository part, or null.</param>
public sealed record StorageUriInfo(string Uri, StorageScheme Scheme, string Authority, string Path, string? Revision)
{
    /// <summary>The scheme as written in a URI (<c>s3</c>, <c>oci+native</c>, …).</summary>
    public string SchemeName => StorageUri.SchemeName(Scheme);

    /// <summary>hf and modelscope: <c>{owner}/{repo}</c>.</summary>
    public string RepositoryId => $"{Authority}/{Path}";
}

/// <summary>Thrown for a model URI that cannot be parsed; the message names the problem.</summary>
public sealed class StorageUriException : FormatException
{
    public StorageUriException()
    {
    }

    public StorageUriException(string message)
        : base(message)
    {
    }

    public StorageUriException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Model storage URI helpers: KServe's cache matching (bit-exact) and scheme parsing.</summary>
public static class StorageUri
{
    private static readonly (string Name, StorageScheme Scheme)[] Schemes =
    [
        ("s3", StorageScheme.S3),
        ("gs", StorageScheme.Gs),
        ("hf", StorageScheme.Hf),
        ("http", StorageScheme.Http),
        ("https", StorageScheme.Https),
        ("pvc", StorageScheme.Pvc),
        ("file", StorageScheme.File),
        ("oci", StorageScheme.Oci),
        ("oci+native", StorageScheme.OciNative),
        ("oci+fetch", StorageScheme.OciFetch),
        ("hdfs", StorageScheme.Hdfs),
        ("webhdfs", StorageScheme.WebHdfs),
        ("modelscope", StorageScheme.ModelScope),
    ];

    /// <summary>The scheme names accepted by <see cref="Parse"/>, in a stable order.</summary>
    public static IReadOnlyList<string> SupportedSchemes { get; } = [.. Schemes.Select(s => s.Name)];

    /// <summary>
    /// KServe's <c>MatchStorageURI(cachedUri, storageUri)</c> (spec §1.7): strip one trailing <c>/</c> from
    /// both; true when they are equal or when <paramref name="storageUri"/> continues
    /// <paramref name="cacheUri"/> with a <c>/</c>. Plain ordinal string comparison: no scheme parsing, no
    /// case folding; <c>gs://b/model-evil</c> does not match <c>gs://b/model</c>.
    /// </summary>
    public static bool Matches(string cacheUri, string storageUri)
    {
        ArgumentNullException.ThrowIfNull(cacheUri);
        ArgumentNullException.ThrowIfNull(storageUri);
        var cached = TrimOneSlash(cacheUri);
        var candidate = TrimOneSlash(storageUri);
        return string.Equals(candidate, cached, StringComparison.Ordinal)
            || (candidate.Length > cached.Length
                && candidate.StartsWith(cached, StringComparison.Ordinal)
                && candidate[cached.Length] == '/');
    }

    /// <summary>
    /// The part of <paramref name="storageUri"/> below the cache's URI as the pod mutator computes it
    /// (spec §4.3): the cache URI prefix removed, with a leading <c>/</c> ensured (an exact match gives
    /// <c>/</c>).
    /// </summary>
    public static string SubPathBelowCache(string cacheUri, string storageUri)
    {
        ArgumentNullException.ThrowIfNull(cacheUri);
        ArgumentNullException.ThrowIfNull(storageUri);
        var sub = storageUri.StartsWith(cacheUri, StringComparison.Ordinal) ? storageUri[cacheUri.Length..] : storageUri;
        return sub.StartsWith('/') ? sub : "/" + sub;
    }

    /// <summary>
    /// The subPath a serving pod mounts for <paramref name="storageUri"/> served from the cache of
    /// <paramref name="cacheUri"/>: <c>models/{K(cacheUri)}{sub}</c> (spec §4.3 worked examples).
    /// </summary>
    public static string ServingSubPath(string cacheUri, string storageUri) =>
        $"{KServeNames.ModelsFolder}/{StorageKey.Compute(cacheUri)}{SubPathBelowCache(cacheUri, storageUri)}";

    /// <summary>Returns the URI form of a scheme (<c>oci+native</c> for <see cref="StorageScheme.OciNative"/>).</summary>
    public static string SchemeName(StorageScheme scheme)
    {
        foreach (var (name, s) in Schemes)
        {
            if (s == scheme)
            {
                return name;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(scheme), scheme, "unknown storage scheme");
    }

    /// <summary>Parses a model URI.</summary>
    /// <exception cref="StorageUriException">The URI has no scheme, an unsupported scheme, or a malformed body.</exception>
    public static StorageUriInfo Parse(string uri)
    {
        if (TryParse(uri, out var info, out var error))
        {
            return info;
        }

        throw new StorageUriException(error);
    }

    /// <summary>Parses a model URI; on failure <paramref name="error"/> says why (without repeating the URI).</summary>
    public static bool TryParse(string? uri, [NotNullWhen(true)] out StorageUriInfo? info, [NotNullWhen(false)] out string? error)
    {
        info = null;
        if (string.IsNullOrEmpty(uri))
        {
            error = "must not be empty";
            return false;
        }

        var sep = uri.IndexOf("://", StringComparison.Ordinal);
        if (sep <= 0)
        {
            error = $"missing scheme: expected one of {string.Join(", ", SupportedSchemes.Select(s => s + "://"))}";
            return false;
        }

        var schemeText = uri[..sep];
        StorageScheme? scheme = null;
        foreach (var (name, s) in Schemes)
        {
            if (string.Equals(name, schemeText, StringComparison.Ordinal))
            {
                scheme = s;
                break;
            }
        }

        if (scheme is null)
        {
            error = $"unsupported scheme \"{schemeText}\" (supported: {string.Join(", ", SupportedSchemes)})";
            return false;
        }

        var rest = uri[(sep + 3)..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var authority = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? "" : rest[(slash + 1)..];
        string? revision = null;

        switch (scheme.Value)
        {
            case StorageScheme.S3:
            case StorageScheme.Gs:
                if (authority.Length == 0)
                {
                    error = $"missing bucket: expected {schemeText}://{{bucket}}/{{prefix}}";
                    return false;
                }

                break;
            case StorageScheme.Pvc:
                if (authority.Length == 0)
                {
                    error = "missing claim name: expected pvc://{claim}/{path}";
                    return false;
                }

                break;
            case StorageScheme.Http:
            case StorageScheme.Https:
                if (!System.Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Host.Length == 0)
                {
                    error = $"not a valid {schemeText} URL: expected {schemeText}://host/path";
                    return false;
                }

                break;
            case StorageScheme.Hf:
            case StorageScheme.ModelScope:
                // KServe's storage initializer: exactly two '/'-separated parts, both non-empty; the text
                // after ':' in the second part is the revision.
                var parts = rest.Split('/');
                if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                {
                    error = $"expected {schemeText}://{{owner}}/{{repo}}[:{{revision}}] with exactly two path parts";
                    return false;
                }

                var colon = parts[1].IndexOf(':', StringComparison.Ordinal);
                if (colon >= 0)
                {
                    revision = parts[1][(colon + 1)..];
                    path = parts[1][..colon];
                    if (path.Length == 0 || revision.Length == 0)
                    {
                        error = $"expected {schemeText}://{{owner}}/{{repo}}[:{{revision}}] with a non-empty repository and revision";
                        return false;
                    }
                }
                else
                {
                    path = parts[1];
                }

                break;
            default:
                if (rest.Length == 0)
                {
                    error = $"missing location after {schemeText}://";
                    return false;
                }

                break;
        }

        info = new StorageUriInfo(uri, scheme.Value, authority, path, revision);
        error = null;
        return true;
    }

    private static string TrimOneSlash(string s) => s.EndsWith('/') ? s[..^1] : s;
}
