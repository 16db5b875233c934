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
    private const int MaxListingRequests = 10_000;
    private const long MaxListingBytes = 16L << 20;
    private int _listingRequests;
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
        if (++_listingRequests > MaxListingRequests)
        {
            throw new DownloadException(FailureReason.NoFiles, $"listing {Redact(_uri.ToString())} needs more than {MaxListingRequests} index pages");
        }
        string html;
        using (var resp = await SendAsync(HttpMethod.Get, folder, null, ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false))
        {
            // An index page is small; a listing that streams megabytes is not an index (or is hostile).
            if (resp.Content.Headers.ContentLength > MaxListingBytes)
            {
                throw new DownloadException(FailureReason.NoFiles, $"index page {Redact(folder.ToString())} is larger than {MaxListingBytes >> 20} MiB");
            }
            using var body = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int n;
            while ((n = await body.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + n > MaxListingBytes)
                {
                    throw new DownloadException(FailureReason.NoFiles, $"index page {Redact(folder.ToString())} is larger than {MaxListingBytes >> 20} MiB");
                }
                buffer.Write(chunk, 0, n);
            }
            html = System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
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
        HttpResponseMessage first;
        try
        {
            first = await SendAsync(HttpMethod.Head, url, null, ct).ConfigureAwait(false);
        }
        catch (DownloadException e) when (e.HttpStatus is 403 or 405 or 501)
        {
            // A pre-signed GET URL (signed for GET only) and some servers refuse HEAD: ask for the first byte instead.
            first = await SendAsync(HttpMethod.Get, url, r => r.Headers.Range = new RangeHeaderValue(0, 0), ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        }
        using var resp = first;
        var partial = resp.StatusCode == HttpStatusCode.PartialContent;
        var size = partial ? resp.Content.Headers.ContentRange?.Length : resp.Content.Headers.ContentLength;
        string? md5 = null, sha256 = null;
        // Content-MD5 describes the bytes of this answer: on a 206 that is one byte, not the file.
        if (!partial && resp.Content.Headers.ContentMD5 is { Length: 16 } m)
        {
            md5 = Convert.ToHexStringLower(m);
        }
        if (resp.Headers.TryGetValues("Repr-Digest", out var digests) || resp.Content.Headers.TryGetValues("Repr-Digest", out digests))
        {
            sha256 = ParseSha256Digest(string.Join(",", digests));
        }
        else if (resp.Headers.TryGetValues("Digest", out digests))
        {
            // RFC 3230, still what many servers send: Digest: SHA-256=BASE64, MD5=BASE64.
            (sha256, md5) = ParseLegacyDigest(string.Join(",", digests), md5);
        }
        if (md5 is null && resp.Headers.TryGetValues("x-goog-hash", out var goog))
        {
            // GCS: x-goog-hash: crc32c=..., md5=BASE64 (md5 only for non-composite objects).
            md5 = goog.SelectMany(g => g.Split(',')).Select(p => p.Trim()).Where(p => p.StartsWith("md5=", StringComparison.Ordinal))
                .Select(p => Base64Hex(p[4..], 16)).FirstOrDefault(h => h is not null);
        }
        var etag = resp.Headers.ETag?.Tag;
        var version = etag ?? resp.Content.Headers.LastModified?.ToString("R");
        var ranges = partial || resp.Headers.AcceptRanges.Contains("bytes");
        return new RemoteFile(relative, size, md5, sha256, version, url.ToString(), ranges);
    }

    internal static (string? Sha256, string? Md5) ParseLegacyDigest(string header, string? md5)
    {
        string? sha = null;
        foreach (var part in header.Split(','))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }
            var (algo, value) = (part[..eq].Trim(), part[(eq + 1)..].Trim());
            if (algo.Equals("SHA-256", StringComparison.OrdinalIgnoreCase))
            {
                sha ??= Base64Hex(value, 32);
            }
            else if (algo.Equals("MD5", StringComparison.OrdinalIgnoreCase))
            {
                md5 ??= Base64Hex(value, 16);
            }
        }
        return (sha, md5);
    }

    private static string? Base64Hex(string b64, int length)
    {
        try
        {
            return Convert.FromBase64String(b64) is var bytes && bytes.Length == length ? Convert.ToHexStringLower(bytes) : null;
        }
        catch (FormatException)
        {
            return null;
        }
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
        var ranged = start > 0 || endInclusive is not null;
        var resp = await SendAsync(HttpMethod.Get, new Uri(file.Locator), req =>
        {
            if (!ranged)
            {
                return;
            }
            req.Headers.Range = new RangeHeaderValue(start, endInclusive);
            // Only the same version may continue a partial file: a strong ETag, else the Last-Modified date.
            if (file.Version is { } v && v.StartsWith('"'))
            {
                req.Headers.IfRange = new RangeConditionHeaderValue(new EntityTagHeaderValue(v));
            }
            else if (file.Version is { } date && DateTimeOffset.TryParse(date, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var lastModified))
            {
                req.Headers.IfRange = new RangeConditionHeaderValue(lastModified);
            }
        }, ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        try
        {
            if (ranged && resp.StatusCode == HttpStatusCode.PartialContent)
            {
                // A 206 must answer the range asked for; any other range would be written at the wrong offset.
                var cr = resp.Content.Headers.ContentRange;
                if (cr is null || cr.From != start || (endInclusive is { } end && file.Size is { } size && cr.To != Math.Min(end, size - 1)))
                {
                    throw new DownloadException(FailureReason.SourceUnavailable, $"{Redact(file.Locator)} answered bytes {cr?.From}-{cr?.To} to a request for {start}-{endInclusive}");
                }
            }
            else if (ranged && start != 0)
            {
                throw new DownloadException(FailureReason.SourceUnavailable, $"{Redact(file.Locator)} ignored the byte range request (status {(int)resp.StatusCode}); the file changed or the server has no range support");
            }
            if (file.Size is null && file.Sha256 is null && file.Md5 is null && IsCloseDelimited(resp))
            {
                // Nothing could tell a connection dropped half-way from the end of the file.
                throw new DownloadException(FailureReason.Unverifiable,
                    $"{Redact(file.Locator)} sends neither a length nor a checksum and ends the body by closing the connection, so a truncated file could not be told from a whole one");
            }
            return new ResponseStream(await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), resp);
        }
        catch
        {
            resp.Dispose();
            throw;
        }
    }

    /// <summary>An HTTP/1.x body with no Content-Length and no chunked framing: it ends where the connection closes.</summary>
    private static bool IsCloseDelimited(HttpResponseMessage resp) =>
        resp.Version.Major < 2 && resp.Content.Headers.ContentLength is null && resp.Headers.TransferEncodingChunked != true;

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, Action<HttpRequestMessage>? configure, CancellationToken ct,
        HttpCompletionOption option = HttpCompletionOption.ResponseContentRead)
    {
        HttpResponseMessage resp;
        try
        {
            resp = await Redirects.SendAsync(_http, url, (target, sameOrigin) =>
            {
                var req = new HttpRequestMessage(method, target);
                // The {host}-headers come from secrets for this host: never sent to another origin on a redirect.
                if (sameOrigin)
                {
                    foreach (var (k, v) in _headers)
                    {
                        req.Headers.TryAddWithoutValidation(k, v);
                    }
                }
                configure?.Invoke(req);
                return req;
            }, option, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new DownloadException(FailureReason.SourceUnavailable, $"{Redact(url.ToString())}: {e.Message}", e);
        }
        if (resp.IsSuccessStatusCode)
        {
            return resp;
        }
        var status = (int)resp.StatusCode;
        resp.Dispose();
        var where = Redact(url.ToString());
        var (reason, message) = status switch
        {
            401 or 403 => (FailureReason.AccessDenied, $"{where}: access denied (HTTP {status}); check the credentials"),
            404 or 410 => (FailureReason.NotFound, $"{where}: not found (HTTP {status})"),
            412 => (FailureReason.SourceUnavailable, $"{where}: the file changed while it was downloaded (HTTP 412)"),
            501 => (FailureReason.NotFound, $"{where}: HTTP {status}"),
            >= 500 or 408 or 429 => (FailureReason.SourceUnavailable, $"{where}: HTTP {status}"),
            _ => (FailureReason.NotFound, $"{where}: HTTP {status}"),
        };
        throw new DownloadException(reason, message) { HttpStatus = status };
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
