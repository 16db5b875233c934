using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KServe.Node.TestKit.S3;

#pragma warning disable CA5351 // S3 defines its ETags with MD5; this computes them, it protects nothing.

/// <summary>
/// AN S3 STAND-IN, NOT S3: a small HTTP server speaking the part of the S3 REST API the agent uses (path-style
/// ListObjectsV2, HEAD with <c>partNumber</c> and <c>x-amz-checksum-mode</c>, GET with <c>Range</c> and
/// <c>If-Match</c>), for the cases s3rver cannot produce: composite multipart ETags with their part layout,
/// <c>x-amz-checksum-sha256</c>, SSE-KMS / SSE-C headers, an object replaced mid-download (412 to
/// <c>If-Match</c>). Signatures are not checked. It records every request's headers so that tests can assert
/// what the agent sent. s3rver stays the origin for everything else.
/// </summary>
public sealed class S3StandIn : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, StandInObject> _objects = new(StringComparer.Ordinal);

    private S3StandIn(WebApplication app) => _app = app;

    public string Endpoint { get; private set; } = "";

    /// <summary>Method, path and query, and the headers of every request received.</summary>
    public ConcurrentQueue<(string Method, string Target, IReadOnlyDictionary<string, string> Headers)> Requests { get; } = new();

    /// <summary>Bytes served from object bodies (ranged GETs included).</summary>
    public long BytesServed => Interlocked.Read(ref _bytesServed);

    private long _bytesServed;

    /// <summary>Starts on a loopback port: plain HTTP, or HTTPS with <paramref name="certificate"/> (and its private key).</summary>
    public static async Task<S3StandIn> StartAsync(System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0, l =>
        {
            if (certificate is not null)
            {
                l.UseHttps(certificate);
            }
        }));
        var app = builder.Build();
        var s3 = new S3StandIn(app);
        app.Run(s3.HandleAsync);
        await app.StartAsync().ConfigureAwait(false);
        s3.Endpoint = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return s3;
    }

    /// <summary>A single-part object: its ETag is the MD5 of <paramref name="data"/> unless <paramref name="etag"/> says otherwise.</summary>
    public StandInObject Put(string bucket, string key, byte[] data, string? etag = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        var o = new StandInObject(data) { ETag = etag ?? Convert.ToHexStringLower(MD5.HashData(data)) };
        _objects[$"{bucket}/{key}"] = o;
        return o;
    }

    /// <summary>An object uploaded in parts of <paramref name="partSize"/> bytes: ETag = MD5(part MD5s) + "-N", as S3 computes it.</summary>
    public StandInObject PutMultipart(string bucket, string key, byte[] data, int partSize)
    {
        ArgumentNullException.ThrowIfNull(data);
        var o = Put(bucket, key, data, CompositeETag(data, partSize));
        o.PartSize = partSize;
        return o;
    }

    public static string CompositeETag(byte[] data, int partSize)
    {
        ArgumentNullException.ThrowIfNull(data);
        var digests = new List<byte>();
        var parts = 0;
        for (var pos = 0; pos < data.Length; pos += partSize, parts++)
        {
            digests.AddRange(MD5.HashData(data.AsSpan(pos, Math.Min(partSize, data.Length - pos))));
        }
        return $"{Convert.ToHexStringLower(MD5.HashData(digests.ToArray()))}-{parts}";
    }

    public IEnumerable<IReadOnlyDictionary<string, string>> GetsOf(string bucket, string key) =>
        Requests.Where(r => r.Method == "GET" && r.Target.Split('?')[0] == $"/{bucket}/{key}").Select(r => r.Headers);

    private async Task HandleAsync(HttpContext ctx)
    {
        var req = ctx.Request;
        Requests.Enqueue((req.Method, req.Path + req.QueryString, req.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));
        var path = Uri.UnescapeDataString(req.Path.Value!.TrimStart('/'));
        if (HttpMethods.IsGet(req.Method) && req.Query.ContainsKey("list-type"))
        {
            path = path.TrimEnd('/');
            await ListAsync(ctx, path, req.Query["prefix"].ToString()).ConfigureAwait(false);
            return;
        }
        if (!_objects.TryGetValue(path, out var o))
        {
            await ErrorAsync(ctx, 404, "NoSuchKey").ConfigureAwait(false);
            return;
        }
        o.Served?.Invoke(o);
        if (req.Headers.IfMatch.Count > 0 && req.Headers.IfMatch.ToString().Trim('"') != o.ETag)
        {
            await ErrorAsync(ctx, 412, "PreconditionFailed").ConfigureAwait(false);
            return;
        }
        var res = ctx.Response;
        res.Headers.ETag = $"\"{o.ETag}\"";
        res.Headers.AcceptRanges = "bytes";
        if (o.ServerSideEncryption is { } sse)
        {
            res.Headers["x-amz-server-side-encryption"] = sse;
        }
        if (o.CustomerAlgorithm is { } alg)
        {
            res.Headers["x-amz-server-side-encryption-customer-algorithm"] = alg;
        }
        if (req.Headers["x-amz-checksum-mode"] == "ENABLED" && o.ChecksumSha256 is { } sum)
        {
            res.Headers["x-amz-checksum-sha256"] = sum;
            res.Headers["x-amz-checksum-type"] = sum.Contains('-', StringComparison.Ordinal) ? "COMPOSITE" : "FULL_OBJECT";
        }
        if (HttpMethods.IsHead(req.Method))
        {
            if (int.TryParse(req.Query["partNumber"], CultureInfo.InvariantCulture, out var part) && o.PartSize is { } ps)
            {
                var count = (o.Data.Length + ps - 1) / ps;
                res.Headers["x-amz-mp-parts-count"] = count.ToString(CultureInfo.InvariantCulture);
                res.ContentLength = Math.Min(ps, o.Data.Length - ((part - 1) * ps));
                return;
            }
            res.ContentLength = o.Data.Length;
            return;
        }
        var (start, end) = (0L, (long)o.Data.Length - 1);
        if (req.Headers.Range.ToString() is { Length: > 0 } range && range.StartsWith("bytes=", StringComparison.Ordinal))
        {
            var spec = range["bytes=".Length..].Split('-');
            start = long.Parse(spec[0], CultureInfo.InvariantCulture);
            end = spec[1].Length > 0 ? Math.Min(end, long.Parse(spec[1], CultureInfo.InvariantCulture)) : end;
            res.StatusCode = 206;
            res.Headers.ContentRange = $"bytes {start}-{end}/{o.Data.Length}";
        }
        var bytes = o.Body(start, end);
        res.ContentLength = bytes.Length;
        await res.Body.WriteAsync(bytes).ConfigureAwait(false);
        Interlocked.Add(ref _bytesServed, bytes.Length);
    }

    private async Task ListAsync(HttpContext ctx, string bucket, string prefix)
    {
        var sb = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
        sb.Append(CultureInfo.InvariantCulture, $"<Name>{SecurityElement.Escape(bucket)}</Name><Prefix>{SecurityElement.Escape(prefix)}</Prefix><IsTruncated>false</IsTruncated>");
        foreach (var (k, o) in _objects.Where(kv => kv.Key.StartsWith($"{bucket}/{prefix}", StringComparison.Ordinal)).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sb.Append(CultureInfo.InvariantCulture, $"<Contents><Key>{SecurityElement.Escape(k[(bucket.Length + 1)..])}</Key><Size>{o.Data.Length}</Size>");
            sb.Append(CultureInfo.InvariantCulture, $"<ETag>&quot;{o.ETag}&quot;</ETag><LastModified>2026-01-01T00:00:00.000Z</LastModified><StorageClass>STANDARD</StorageClass></Contents>");
        }
        sb.Append("</ListBucketResult>");
        ctx.Response.ContentType = "application/xml";
        await ctx.Response.WriteAsync(sb.ToString()).ConfigureAwait(false);
    }

    private static async Task ErrorAsync(HttpContext ctx, int status, string code)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/xml";
        if (!HttpMethods.IsHead(ctx.Request.Method))
        {
            await ctx.Response.WriteAsync($"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>").ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>One object of the <see cref="S3StandIn"/> and how it misbehaves.</summary>
public sealed class StandInObject(byte[] data)
{
    public byte[] Data { get; set; } = data;

    public string ETag { get; set; } = "";

    /// <summary>A new upload over the object: new bytes, and a new (single-part) ETag.</summary>
    public void Replace(byte[] data)
    {
        Data = data;
        ETag = Convert.ToHexStringLower(MD5.HashData(data));
        PartSize = null;
    }

    /// <summary>Multipart part size (HEAD ?partNumber= answers it with the parts count).</summary>
    public int? PartSize { get; set; }

    /// <summary><c>x-amz-server-side-encryption</c>: <c>aws:kms</c>, <c>aws:kms:dsse</c> or <c>AES256</c>.</summary>
    public string? ServerSideEncryption { get; set; }

    /// <summary><c>x-amz-server-side-encryption-customer-algorithm</c> (SSE-C).</summary>
    public string? CustomerAlgorithm { get; set; }

    /// <summary>Base64 <c>x-amz-checksum-sha256</c>, given only with <c>x-amz-checksum-mode: ENABLED</c>.</summary>
    public string? ChecksumSha256 { get; set; }

    /// <summary>Bytes to flip in GET bodies (offset → value), as a corrupting disk or proxy would.</summary>
    public ConcurrentDictionary<long, byte> Corrupt { get; } = new();

    /// <summary>Called on every request for the object before it is answered (e.g. to replace it mid-download).</summary>
    public Action<StandInObject>? Served { get; set; }

    internal byte[] Body(long start, long end)
    {
        var bytes = Data.AsSpan((int)start, (int)(end - start + 1)).ToArray();
        foreach (var (offset, value) in Corrupt)
        {
            if (offset >= start && offset <= end)
            {
                bytes[offset - start] = value;
            }
        }
        return bytes;
    }
}
