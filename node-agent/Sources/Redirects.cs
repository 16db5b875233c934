using System.Net;

namespace KServe.Node.Agent.Sources;

/// <summary>
/// Redirects followed by hand, because what travels with a request depends on where it goes: credentials (the
/// Hub token, custom <c>{host}-headers</c> from secrets) go only to the origin they were configured for (same
/// scheme, host and port); a redirect to anywhere else gets the request without them; https → http is refused,
/// since even a credential-free request would then leak the path and the bytes would arrive unprotected.
/// <see cref="SourceFactory.CreateHttpClient"/> turns the handler's own redirects off so that this is the only way.
/// </summary>
internal static class Redirects
{
    public const int MaxRedirects = 5;

    /// <summary>
    /// Sends the request <paramref name="build"/> makes for <paramref name="url"/> and follows redirects;
    /// <paramref name="build"/> gets each target and whether it is the original origin (add credentials only then).
    /// </summary>
    public static async Task<HttpResponseMessage> SendAsync(HttpClient http, Uri url, Func<Uri, bool, HttpRequestMessage> build,
        HttpCompletionOption option, CancellationToken ct)
    {
        var target = url;
        for (var hop = 0; ; hop++)
        {
            using var req = build(target, SameOrigin(url, target));
            var resp = await http.SendAsync(req, option, ct).ConfigureAwait(false);
            if (!IsRedirect(resp.StatusCode) || resp.Headers.Location is not { } location)
            {
                return resp;
            }
            resp.Dispose();
            var next = location.IsAbsoluteUri ? location : new Uri(target, location);
            if (hop + 1 > MaxRedirects)
            {
                throw new DownloadException(FailureReason.SourceUnavailable, $"{Redact(url)}: more than {MaxRedirects} redirects");
            }
            if (target.Scheme == Uri.UriSchemeHttps && next.Scheme != Uri.UriSchemeHttps)
            {
                throw new DownloadException(FailureReason.UnsafeRedirect, $"{Redact(target)} redirected to {Redact(next)}: an https source may not send the download to plain http");
            }
            if (next.Scheme is not ("http" or "https"))
            {
                throw new DownloadException(FailureReason.UnsafeRedirect, $"{Redact(target)} redirected to an unsupported scheme '{next.Scheme}'");
            }
            target = next;
        }
    }

    /// <summary>Same scheme, host and port: where a credential configured for <paramref name="origin"/> may go.</summary>
    public static bool SameOrigin(Uri origin, Uri other) =>
        origin.Scheme == other.Scheme && string.Equals(origin.IdnHost, other.IdnHost, StringComparison.OrdinalIgnoreCase) && origin.Port == other.Port;

    /// <summary>Loopback addresses: plain http there never crosses a network.</summary>
    public static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.IdnHost.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    private static bool IsRedirect(HttpStatusCode code) => code is HttpStatusCode.MovedPermanently or HttpStatusCode.Found
        or HttpStatusCode.SeeOther or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    private static string Redact(Uri u) => $"{u.Scheme}://{u.Authority}{u.AbsolutePath}";
}
