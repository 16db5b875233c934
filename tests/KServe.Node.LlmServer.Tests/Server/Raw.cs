using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>Raw HTTP helpers: the bytes on the wire, not a client's interpretation of them.</summary>
internal static class Raw
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static async Task<(int Status, JsonDocument? Body, HttpResponseMessage Response)> PostAsync(HttpClient http, string path, string json)
    {
        var r = await http.PostAsync(path, Json(json));
        var text = await r.Content.ReadAsStringAsync();
        JsonDocument? doc = null;
        try
        {
            doc = JsonDocument.Parse(text);
        }
        catch (JsonException)
        {
        }
        return ((int)r.StatusCode, doc, r);
    }

    public static async Task<(int Status, JsonDocument? Body)> GetAsync(HttpClient http, string path)
    {
        using var r = await http.GetAsync(path);
        var text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, text.Length > 0 && text[0] is '{' or '[' ? JsonDocument.Parse(text) : null);
    }

    public static void AssertError(JsonDocument? body, string? param, string? code = null, string type = "invalid_request_error")
    {
        Assert.NotNull(body);
        var e = body.RootElement.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(e.GetProperty("message").GetString()));
        Assert.Equal(type, e.GetProperty("type").GetString());
        Assert.Equal(param, e.GetProperty("param").GetString());
        if (code is not null)
        {
            Assert.Equal(code, e.GetProperty("code").GetString());
        }
    }

    /// <summary>Posts a streaming request and returns the whole body as bytes.</summary>
    public static async Task<(HttpResponseMessage Response, byte[] Body)> StreamAsync(HttpClient http, string path, string json)
    {
        var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(json) };
        req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var r = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        var bytes = await r.Content.ReadAsByteArrayAsync();
        return (r, bytes);
    }

    /// <summary>Polls a real condition (a gauge, a counter) until it holds or the timeout passes.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("timed out waiting for " + what);
            }
            await Task.Delay(20);
        }
    }

    public static async Task<double> MetricAsync(HttpClient http, string line)
    {
        var text = await http.GetStringAsync("metrics");
        var hit = text.Split('\n').FirstOrDefault(l => l.StartsWith(line + " ", StringComparison.Ordinal));
        Assert.NotNull(hit);
        return double.Parse(hit[(line.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
