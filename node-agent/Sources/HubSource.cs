using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace KServe.Node.Agent.Sources;

/// <summary>
/// <c>hf://owner/repo[:revision]</c> over the Hugging Face Hub's HTTP API: the revision is resolved to its
/// commit (<c>GET /api/models/{repo}/revision/{rev}</c>), the files listed
/// (<c>GET /api/models/{repo}/tree/{commit}?recursive=true</c>, following <c>Link: rel="next"</c>), each
/// file fetched from <c>/{repo}/resolve/{commit}/{path}</c> (redirects followed; the token is not sent to
/// other hosts). LFS files carry their sha256, which is verified. <c>HF_ENDPOINT</c> and <c>HF_TOKEN</c>
/// are honoured.
/// </summary>
internal sealed class HubSource : IModelSource
{
    private readonly HttpClient _http;
    private readonly string _endpoint;
    private readonly string _repo;
    private readonly string _revision;
    private readonly string? _token;
    private readonly string _uri;
    private readonly Uri _origin;

    public HubSource(string uri, SourceSettings settings, HttpClient http)
    {
        _uri = Engine.ModelFetcher.SafeUri(uri);
        _http = http;
        (_repo, _revision) = Parse(uri);
        _endpoint = (settings.Get("HF_ENDPOINT") ?? "https://huggingface.co").TrimEnd('/');
        _token = settings.Get("HF_TOKEN") ?? settings.Get("HUGGING_FACE_HUB_TOKEN");
        if (!Uri.TryCreate(_endpoint, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
        {
            throw new DownloadException(FailureReason.InvalidUri, $"HF_ENDPOINT '{HttpSource.Redact(_endpoint)}' is not an http(s) URL");
        }
        if (_token is not null && endpoint.Scheme == Uri.UriSchemeHttp && !Redirects.IsLoopback(endpoint))
        {
            throw new DownloadException(FailureReason.UnsafeRedirect, $"HF_ENDPOINT {HttpSource.Redact(_endpoint)} is plain http: the Hub token would cross the network unencrypted (use https, or unset HF_TOKEN)");
        }
        _origin = endpoint;
    }

    /// <summary>KServe's rule: exactly two '/'-separated non-empty parts after the prefix; ':rev' on the second.</summary>
    internal static (string Repo, string Revision) Parse(string uri)
    {
        var rest = uri["hf://".Length..];
        var parts = rest.Split('/');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            throw new DownloadException(FailureReason.InvalidUri, $"'{Engine.ModelFetcher.SafeUri(uri)}' must be hf://owner/repo[:revision]");
        }
        var colon = parts[1].IndexOf(':', StringComparison.Ordinal);
        var model = colon < 0 ? parts[1] : parts[1][..colon];
        var rev = colon < 0 ? "main" : parts[1][(colon + 1)..];
        if (model.Length == 0 || rev.Length == 0)
        {
            throw new DownloadException(FailureReason.InvalidUri, $"'{Engine.ModelFetcher.SafeUri(uri)}' must be hf://owner/repo[:revision]");
        }
        // The Hub's own rule for names; anything else ('..', '?', '%2F') would reach other API paths with the token.
        if (!HubName(parts[0]) || !HubName(model) || rev.Contains("..", StringComparison.Ordinal) || rev.Any(c => c is '?' or '#' or '%' or '\\' || char.IsControl(c)))
        {
            throw new DownloadException(FailureReason.InvalidUri, $"'{uri}': owner and repository may hold only letters, digits, '.', '_' and '-' (not starting with '.' or '-'), and the revision no '..', '?', '#' or '%'");
        }
        return ($"{parts[0]}/{model}", rev);
    }

    private static bool HubName(string part) =>
        part.Length is > 0 and <= 96 && char.IsAsciiLetterOrDigit(part[0]) && part.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-') && !part.Contains("..", StringComparison.Ordinal);

    public void Dispose() { }

    public async Task<IReadOnlyList<RemoteFile>> ListAsync(CancellationToken ct)
    {
        string commit;
        using (var resp = await SendAsync(new Uri($"{_endpoint}/api/models/{_repo}/revision/{Uri.EscapeDataString(_revision)}"), null, ct).ConfigureAwait(false))
        {
            var info = await JsonSerializer.DeserializeAsync(await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), HubJsonContext.Default.HubModelInfo, ct).ConfigureAwait(false);
            commit = info?.Sha is { Length: > 0 } sha ? sha : throw new DownloadException(FailureReason.NotFound, $"{_uri}: the Hub returned no commit for revision '{_revision}'");
        }
        var files = new List<RemoteFile>();
        Uri? next = new($"{_endpoint}/api/models/{_repo}/tree/{commit}?recursive=true&expand=false");
        while (next is not null)
        {
            using var resp = await SendAsync(next, null, ct).ConfigureAwait(false);
            var entries = await JsonSerializer.DeserializeAsync(await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), HubJsonContext.Default.ListHubTreeEntry, ct).ConfigureAwait(false) ?? [];
            foreach (var e in entries.Where(e => e.Type == "file"))
            {
                var path = PathGuard.Validate(e.Path ?? "", _uri);
                var escaped = string.Join('/', path.Split('/').Select(Uri.EscapeDataString));
                // LFS files carry the SHA-256 of their content; the others their git blob id (for LFS files that id is the pointer's).
                var sha256 = e.Lfs?.Oid is { Length: 64 } oid ? oid.ToLowerInvariant() : null;
                var gitSha1 = e.Lfs is null && e.Oid is { Length: 40 } blob ? blob.ToLowerInvariant() : null;
                files.Add(new RemoteFile(path, e.Size, null, sha256, commit, $"{_endpoint}/{_repo}/resolve/{commit}/{escaped}", GitSha1: gitSha1));
            }
            next = NextLink(resp.Headers);
            if (next is not null && !Redirects.SameOrigin(_origin, next))
            {
                // The token goes with every listing page: a next link elsewhere would hand it to another host.
                throw new DownloadException(FailureReason.UnsafeRedirect, $"{_uri}: the Hub's next listing page points to another host ({next.Scheme}://{next.Authority})");
            }
        }
        return files;
    }

    private static Uri? NextLink(HttpResponseHeaders headers)
    {
        if (!headers.TryGetValues("Link", out var links))
        {
            return null;
        }
        foreach (var link in links.SelectMany(l => l.Split(',')))
        {
            var parts = link.Split(';');
            if (parts.Skip(1).Any(p => p.Trim().Equals("rel=\"next\"", StringComparison.OrdinalIgnoreCase)))
            {
                return new Uri(parts[0].Trim().Trim('<', '>'));
            }
        }
        return null;
    }

    public async Task<Stream> OpenReadAsync(RemoteFile file, long start, long? endInclusive, CancellationToken ct)
    {
        var range = start > 0 || endInclusive is not null ? new RangeHeaderValue(start, endInclusive) : null;
        var resp = await SendAsync(new Uri(file.Locator), range, ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        if (range is not null && resp.StatusCode != HttpStatusCode.PartialContent && start > 0)
        {
            resp.Dispose();
            throw new DownloadException(FailureReason.SourceUnavailable, $"{_uri}: {file.Path}: the Hub ignored the byte range");
        }
        if (range is not null && resp.StatusCode == HttpStatusCode.PartialContent && resp.Content.Headers.ContentRange?.From != start)
        {
            resp.Dispose();
            throw new DownloadException(FailureReason.SourceUnavailable, $"{_uri}: {file.Path}: the Hub answered another byte range than {start}-{endInclusive}");
        }
        return new ResponseStream(await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), resp);
    }

    private async Task<HttpResponseMessage> SendAsync(Uri url, RangeHeaderValue? range, CancellationToken ct, HttpCompletionOption option = HttpCompletionOption.ResponseContentRead)
    {
        HttpResponseMessage resp;
        try
        {
            resp = await Redirects.SendAsync(_http, url, (target, _) =>
            {
                var req = new HttpRequestMessage(HttpMethod.Get, target) { Headers = { Range = range } };
                // The token goes to the Hub endpoint only, never to the CDN or another host a redirect names.
                if (_token is not null && Redirects.SameOrigin(_origin, target))
                {
                    req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
                }
                return req;
            }, option, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new DownloadException(FailureReason.SourceUnavailable, $"{_uri}: {e.Message}", e);
        }
        if (resp.IsSuccessStatusCode)
        {
            return resp;
        }
        var status = (int)resp.StatusCode;
        resp.Dispose();
        throw status switch
        {
            401 or 403 => new DownloadException(FailureReason.AccessDenied, $"{_uri}: access denied by the Hub (HTTP {status}); the repository is gated or private: check HF_TOKEN"),
            404 => new DownloadException(FailureReason.NotFound, $"{_uri}: repository, revision or file not found on the Hub (HTTP 404)"),
            >= 500 or 408 or 429 => new DownloadException(FailureReason.SourceUnavailable, $"{_uri}: the Hub answered HTTP {status}"),
            _ => new DownloadException(FailureReason.NotFound, $"{_uri}: the Hub answered HTTP {status}"),
        };
    }
}

internal sealed class HubModelInfo
{
    [JsonPropertyName("sha")]
    public string? Sha { get; set; }
}

internal sealed class HubTreeEntry
{
    [JsonPropertyName("type")]
    public string? Type { get; set; }

    [JsonPropertyName("path")]
    public string? Path { get; set; }

    [JsonPropertyName("size")]
    public long? Size { get; set; }

    [JsonPropertyName("oid")]
    public string? Oid { get; set; }

    [JsonPropertyName("lfs")]
    public HubLfs? Lfs { get; set; }
}

internal sealed class HubLfs
{
    [JsonPropertyName("oid")]
    public string? Oid { get; set; }

    [JsonPropertyName("size")]
    public long? Size { get; set; }
}

[JsonSerializable(typeof(HubModelInfo))]
[JsonSerializable(typeof(List<HubTreeEntry>))]
internal sealed partial class HubJsonContext : JsonSerializerContext;
