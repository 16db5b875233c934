using System.Collections.ObjectModel;

namespace KServe.Node.Agent.Sources;

/// <summary>
/// Settings for one download, named as KServe's storage-initializer environment variables
/// (<c>AWS_ACCESS_KEY_ID</c>, <c>S3_ENDPOINT</c>, <c>HF_TOKEN</c>, …). In standalone mode and for the
/// one-shot verb they come from the process environment; in Kubernetes mode from the cache's
/// service-account secrets and storage-config secret, resolved the way KServe injects them into its Job.
/// </summary>
internal sealed class SourceSettings
{
    private readonly Dictionary<string, string> _values;

    public SourceSettings(IEnumerable<KeyValuePair<string, string>> values)
    {
        _values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in values)
        {
            _values[k] = v;
        }
    }

    public static SourceSettings Empty { get; } = new([]);

    public static SourceSettings FromEnvironment()
    {
        var values = new List<KeyValuePair<string, string>>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            if (e.Key is string k && e.Value is string v)
            {
                values.Add(new(k, v));
            }
        }
        return new SourceSettings(values);
    }

    public IReadOnlyDictionary<string, string> Values => new ReadOnlyDictionary<string, string>(_values);

    public string? Get(string name) => _values.TryGetValue(name, out var v) && v.Length > 0 ? v : null;

    public bool Flag(string name, bool fallback = false) => Get(name) switch
    {
        null => fallback,
        var v => v is "1" || v.Equals("true", StringComparison.OrdinalIgnoreCase) || v.Equals("yes", StringComparison.OrdinalIgnoreCase),
    };

    /// <summary>True when both hold the same names and values.</summary>
    public bool SameAs(SourceSettings other) =>
        ReferenceEquals(this, other) || (_values.Count == other._values.Count && _values.All(kv => other._values.TryGetValue(kv.Key, out var v) && v == kv.Value));

    /// <summary>Returns a copy with <paramref name="overrides"/> laid over these values.</summary>
    public SourceSettings With(IEnumerable<KeyValuePair<string, string>> overrides) => new(_values.Concat(overrides));
}

/// <summary>Picks the source for a URI by its scheme.</summary>
internal static class SourceFactory
{
    /// <summary>The source for <paramref name="uri"/>; an S3 source without keys may use the SDK's default credential
    /// chain only when <paramref name="awsDefaultCredentials"/> says so.</summary>
    public static IModelSource Create(string uri, SourceSettings settings, HttpClient http, bool awsDefaultCredentials = false)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var scheme = uri.IndexOf("://", StringComparison.Ordinal) is var i and > 0 ? uri[..i].ToLowerInvariant() : "";
        return scheme switch
        {
            "http" or "https" => new HttpSource(uri, settings, http),
            "s3" => S3Source.Create(uri, settings, awsDefaultCredentials),
            "gs" => S3Source.CreateForGcs(uri, settings),
            "hf" => new HubSource(uri, settings, http),
            "" => throw new DownloadException(FailureReason.InvalidUri, $"'{Engine.ModelFetcher.SafeUri(uri)}' has no scheme; supported: s3://, gs://, hf://, https://, http://"),
            _ => throw new DownloadException(FailureReason.InvalidUri, $"unsupported scheme '{scheme}://' in '{Engine.ModelFetcher.SafeUri(uri)}'; supported: s3://, gs://, hf://, https://, http://"),
        };
    }

    /// <summary>
    /// One HttpClient for all sources: no decompression (byte ranges must be raw), many connections per host, and no
    /// automatic redirects: <see cref="Redirects"/> follows them and decides what credentials may travel.
    /// </summary>
    public static HttpClient CreateHttpClient() => new(new SocketsHttpHandler
    {
        AutomaticDecompression = System.Net.DecompressionMethods.None,
        MaxConnectionsPerServer = 64,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectTimeout = TimeSpan.FromSeconds(15),
        AllowAutoRedirect = false,
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
        DefaultRequestHeaders = { { "User-Agent", "kserve-node-agent" } },
    };
}
