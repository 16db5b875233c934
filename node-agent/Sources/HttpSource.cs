using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace KServe.Node.Agent.Sources;

/// <summary>
/// <c>http(s)://</c> sources: a URL ending in '/' is a listing (an index page such as nginx's autoindex,
/// followed one level of links at a time, relative links only); any other URL is a single file. Byte
/// ranges use <c>Range</c>; a server that ignores them is read from the start. Extra request headers come
/// from the setting <c>{host}-headers</c> (JSON object), as KServe injects them.
/// </summary>
internal sealed partial class HttpSource : IModelSource
{
    private const int MaxListingDepth = 8;
    private const int MaxListingFiles = 100_000;
    private readonly Uri _uri;
    private readonly HttpClient _http;
    private readonly Dictionary<string, string> _headers = new(StringComparer.OrdinalIgnoreCase);

    public HttpSource(string uri, SourceSettings settings, HttpClient http)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host.Length == 0)
        {
            throw new DownloadException(FailureReason.InvalidUri, $"'{Engine.ModelFetcher.SafeUri(uri)}' is not a valid http(s) URL");
        }
        _uri = parsed;
        _http = http;
        if (settings.Get($"{parsed.Host}-headers") is { } json)
        {
            try
            {
                foreach (var p in JsonDocument.Parse(json).RootElement.EnumerateObject())
                {
                    _headers[p.Name] = p.Value.GetString() ?? "";
                }
            }
            catch (JsonException)
            {
                throw new DownloadException(FailureReason.InvalidUri, $"setting '{parsed.Host}-headers' is not a JSON object of strings");
            }
        }
    }

    public void Dispose() { }

    public async Task<IReadOnlyList<RemoteFile>> ListAsync(CancellationToken ct)
    {
        if (!_uri.AbsolutePath.EndsWith('/'))
        {
            var name = Uri.UnescapeDataString(_uri.AbsolutePath.Split('/')[^1]);
            return [await ProbeAsync(_uri, PathGuard.Validate(name, Redact(_uri.ToString())), ct).ConfigureAwait(false)];
        }
        var files = new List<RemoteFile>();
        await ListFolderAsync(_uri, "", 0, files, ct).ConfigureAwait(false);
        return files;
    }

    private async Task ListFolderAsync(Uri folder, string prefix, int depth, List<RemoteFile> files, CancellationToken ct)
    {
        if (depth > MaxListingDepth)
        {
            throw new DownloadException(FailureReason.UnsafePath, $"listing {Redact(_uri.ToString())} nests deeper than {MaxListingDepth} folders");
        }
        string html;
        using (var req = NewRequest(HttpMethod.Get, folder))
        using (var resp = await SendAsync(req, ct).ConfigureAwait(false))
        {
            html = await resp.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        }
        foreach (Match m in HrefRegex().Matches(html))
        {
            var href = WebUtility.HtmlDecode(m.Groups[1].Value);
            if (href.Length == 0 || href[0] is '?' or '#' || href.StartsWith("../", StringComparison.Ordinal) || href == "./")
            {
                continue;
            }
            if (href.Contains("://", StringComparison.Ordinal) || href.StartsWith('/'))
            {
                // Absolute links leave the listing (parent links, navigation); they are not part of the model.
                continue;
            }
            var hrefPath = href.Split('?', '#')[0];
            var isDir = hrefPath.EndsWith('/');
            var name = Uri.UnescapeDataString(hrefPath.TrimEnd('/'));
            var relative = PathGuard.Validate(prefix + name, Redact(_uri.ToString()));
            var target = new Uri(folder, hrefPath);
            if (isDir)
            {
                await ListFolderAsync(target, relative + "/", depth + 1, files, ct).ConfigureAwait(false);
            }
            else
            {
                files.Add(await ProbeAsync(target, relative, ct).ConfigureAwait(false));
                if (files.Count > MaxListingFiles)
                {
                    throw new DownloadException(FailureReason.NoFiles, $"listing {Redact(_uri.ToString())} has more than {MaxListingFiles} files");
                }
            }
        }
    }

    private async Task<RemoteFile> ProbeAsync(Uri url, string relative, CancellationToken ct)
    {
        using var req = NewRequest(HttpMethod.Head, url);
        using var resp = await SendAsync(req, ct).ConfigureAwait(false);
        var size = resp.Content.Headers.ContentLength;
        string? md5 = null, sha256 = null;
        if (resp.Content.Headers.ContentMD5 is { Length: 16 } m)
        {
            md5 = Convert.ToHexStringLower(m);
        }
        if (resp.Headers.TryGetValues("Repr-Digest", out var digests) || resp.Content.Headers.TryGetValues("Repr-Digest", out digests))
        {
            sha256 = ParseSha256Digest(string.Join(",", digests));
        }
        var etag = resp.Headers.ETag?.Tag;
        var version = etag ?? resp.Content.Headers.LastModified?.ToString("R");
        var ranges = resp.Headers.AcceptRanges.Contains("bytes");
        return new RemoteFile(relative, size, md5, sha256, version, url.ToString(), ranges);
    }

    internal static string? ParseSha256Digest(string header)
    {
        // RFC 9530: Repr-Digest: sha-256=:BASE64:
        foreach (var part in header.Split(','))
        {
            var kv = part.Trim();
            if (kv.StartsWith("sha-256=:", StringComparison.OrdinalIgnoreCase) && kv.EndsWith(':'))
            {
                try
                {
                    var bytes = Convert.FromBase64String(kv["sha-256=:".Length..^1]);
                    return bytes.Length == 32 ? Convert.ToHexStringLower(bytes) : null;
                }
                catch (FormatException)
                {
                    return null;
                }
            }
        }
        return null;
    }

    public async Task<Stream> OpenReadAsync(RemoteFile file, long start, long? endInclusive, CancellationToken ct)
    {
        var req = NewRequest(HttpMethod.Get, new Uri(file.Locator));
        var ranged = start > 0 || endInclusive is not null;
        if (ranged)
        {
            req.Headers.Range = new RangeHeaderValue(start, endInclusive);
            if (file.Version is { } v && v.StartsWith('"'))
            {
                // Only the same version may continue a partial file.
                req.Headers.IfRange = new RangeConditionHeaderValue(new EntityTagHeaderValue(v));
            }
        }
        var resp = await SendAsync(req, ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        try
        {
            var body = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            if (ranged && resp.StatusCode != HttpStatusCode.PartialContent)
            {
                if (start != 0)
                {
                    throw new DownloadException(FailureReason.SourceUnavailable, $"{Redact(file.Locator)} ignored the byte range request (status {(int)resp.StatusCode}); the file changed or the server has no range support");
                }
            }
            return new ResponseStream(body, resp);
        }
        catch
        {
            resp.Dispose();
            req.Dispose();
            throw;
        }
    }

    private HttpRequestMessage NewRequest(HttpMethod method, Uri url)
    {
        var req = new HttpRequestMessage(method, url);
        foreach (var (k, v) in _headers)
        {
            req.Headers.TryAddWithoutValidation(k, v);
        }
        return req;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage req, CancellationToken ct, HttpCompletionOption option = HttpCompletionOption.ResponseContentRead)
    {
        HttpResponseMessage resp;
        try
        {
            resp = await _http.SendAsync(req, option, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new DownloadException(FailureReason.SourceUnavailable, $"{Redact(req.RequestUri!.ToString())}: {e.Message}", e);
        }
        if (resp.IsSuccessStatusCode)
        {
            return resp;
        }
        var status = (int)resp.StatusCode;
        resp.Dispose();
        var where = Redact(req.RequestUri!.ToString());
        throw status switch
        {
            401 or 403 => new DownloadException(FailureReason.AccessDenied, $"{where}: access denied (HTTP {status}); check the credentials"),
            404 or 410 => new DownloadException(FailureReason.NotFound, $"{where}: not found (HTTP {status})"),
            >= 500 or 408 or 429 => new DownloadException(FailureReason.SourceUnavailable, $"{where}: HTTP {status}"),
            _ => new DownloadException(FailureReason.NotFound, $"{where}: HTTP {status}"),
        };
    }

    /// <summary>Drops the query string (pre-signed URLs carry credentials there) and any user info.</summary>
    internal static string Redact(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var u) ? $"{u.Scheme}://{u.Authority}{u.AbsolutePath}" : "(url)";

    [GeneratedRegex("""href\s*=\s*["']([^"']*)["']""", RegexOptions.IgnoreCase)]
    private static partial Regex HrefRegex();
}

/// <summary>A response body that disposes its response (and connection lease) with it.</summary>
internal sealed class ResponseStream(Stream inner, IDisposable owner) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            owner.Dispose();
        }
        base.Dispose(disposing);
    }
}
