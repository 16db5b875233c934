using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using k8s;
using k8s.Models;

namespace KServe.Node.Runtime;

/// <summary>
/// Raw REST calls through a <see cref="Kubernetes"/> client's own HttpClient and credentials, so that one code path
/// serves built-in and custom resources and a watch stream can be read without the client's line buffering.
/// </summary>
internal static class KubeTransport
{
    /// <summary>The serializer options KubernetesClient uses (its converters for dates, quantities, int-or-string).</summary>
    internal static readonly JsonSerializerOptions JsonOptions = CaptureOptions();

    private static JsonSerializerOptions CaptureOptions()
    {
        JsonSerializerOptions? captured = null;
        KubernetesJson.AddJsonOptions(o => captured = o);
        return captured!;
    }

    public static async Task<HttpResponseMessage> SendAsync(
        Kubernetes client, HttpMethod method, string pathAndQuery, HttpContent? content, bool streaming, CancellationToken ct)
    {
        var baseUri = client.BaseUri.AbsoluteUri.TrimEnd('/');
        using var request = new HttpRequestMessage(method, new Uri(baseUri + pathAndQuery)) { Content = content };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (client.Credentials is { } credentials)
        {
            await credentials.ProcessHttpRequestAsync(request, ct).ConfigureAwait(false);
        }

        // The client's HttpClient has no timeout of its own (the generated operations apply HttpClientTimeout);
        // apply it here too, to the request and, unless streaming, to reading the body.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(client.HttpClientTimeout);
        HttpResponseMessage response;
        try
        {
            response = await client.HttpClient.SendAsync(
                request, streaming ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"{method} {pathAndQuery.Split('?', 2)[0]}: no answer within {client.HttpClientTimeout}", e);
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            throw CreateError(response.StatusCode, body, method, pathAndQuery);
        }
    }

    public static async Task<TResult> SendAsync<TResult>(
        Kubernetes client, HttpMethod method, string pathAndQuery, HttpContent? content, CancellationToken ct)
    {
        using var response = await SendAsync(client, method, pathAndQuery, content, streaming: false, ct).ConfigureAwait(false);
        var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            return await JsonSerializer.DeserializeAsync<TResult>(stream, JsonOptions, ct).ConfigureAwait(false)
                ?? throw new KubernetesApiException($"{method} {pathAndQuery}: empty response body");
        }
    }

    public static ByteArrayContent JsonContent<TBody>(TBody body, string mediaType = "application/json")
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, JsonOptions));
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return content;
    }

    public static StringContent RawContent(string body, string mediaType)
    {
        var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return content;
    }

    internal static KubernetesApiException CreateError(HttpStatusCode code, string body, HttpMethod method, string pathAndQuery)
    {
        V1Status? status = null;
        try
        {
            status = JsonSerializer.Deserialize<V1Status>(body, JsonOptions);
        }
        catch (JsonException)
        {
            // Not a Status body (a proxy in between, say): the raw text goes into the message below.
        }

        var path = pathAndQuery.Split('?', 2)[0];
        var detail = status?.Message is { Length: > 0 } m ? m : Truncate(body, 200);
        return new KubernetesApiException(code, status, $"{method} {path}: {(int)code} {status?.Reason ?? code.ToString()}: {detail}");
    }

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "...";
}
