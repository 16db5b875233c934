using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;

namespace KServe.Node.LlmServer.Api;

/// <summary>
/// Server-sent events as OpenAI streams them: each event is <c>data: {json}\n\n</c>, the stream ends with
/// <c>data: [DONE]\n\n</c>, and <c>:\n\n</c> comments keep idle connections (long prefills) alive.
/// Writes are serialised so a keep-alive ping never interleaves with a data event.
/// </summary>
internal sealed class SseWriter(HttpResponse response) : IDisposable
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private static readonly byte[] Ping = ":\n\n"u8.ToArray();
    private readonly SemaphoreSlim _lock = new(1, 1);

    public bool Started { get; private set; }

    public async Task StartAsync(CancellationToken ct)
    {
        if (Started)
        {
            return;
        }
        Started = true;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        await response.StartAsync(ct).ConfigureAwait(false);
    }

    public Task WriteAsync<T>(T value, JsonTypeInfo<T> typeInfo, CancellationToken ct) =>
        WriteRawAsync(JsonSerializer.SerializeToUtf8Bytes(value, typeInfo), ct);

    public async Task WriteRawAsync(byte[] json, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await StartAsync(ct).ConfigureAwait(false);
            var buffer = new byte[DataPrefix.Length + json.Length + EventEnd.Length];
            DataPrefix.CopyTo(buffer, 0);
            json.CopyTo(buffer, DataPrefix.Length);
            EventEnd.CopyTo(buffer, DataPrefix.Length + json.Length);
            await response.Body.WriteAsync(buffer, ct).ConfigureAwait(false);
            await response.Body.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    public Task WriteDoneAsync(CancellationToken ct) => WriteBytesAsync(Done, ct);

    public Task WritePingAsync(CancellationToken ct) => WriteBytesAsync(Ping, ct);

    private async Task WriteBytesAsync(byte[] bytes, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await StartAsync(ct).ConfigureAwait(false);
            await response.Body.WriteAsync(bytes, ct).ConfigureAwait(false);
            await response.Body.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    public void Dispose() => _lock.Dispose();

    internal static string Format(string json) => new StringBuilder("data: ").Append(json).Append("\n\n").ToString();
}
