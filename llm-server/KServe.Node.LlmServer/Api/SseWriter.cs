using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;

namespace KServe.Node.LlmServer.Api;

/// <summary>
/// Server-sent events as OpenAI streams them: each event is <c>data: {json}\n\n</c>, the stream ends with
/// <c>data: [DONE]\n\n</c>, and <c>:\n\n</c> comments keep idle connections (long prefills) alive.
/// Events are serialised straight into the response's pipe (no buffer per event) and go out on
/// <see cref="FlushAsync"/>, so the events of one engine step leave in one write; [DONE] and pings flush at once.
/// Writes are serialised so a keep-alive ping never interleaves with a data event.
/// </summary>
internal sealed class SseWriter(HttpResponse response) : IDisposable
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private static readonly byte[] Ping = ":\n\n"u8.ToArray();
    private readonly SemaphoreSlim _lock = new(1, 1);
    private Utf8JsonWriter? _json;
    private bool _unflushed;

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

    /// <summary>Writes one event; it is sent with the next <see cref="FlushAsync"/> (or [DONE], or a ping).</summary>
    public async Task WriteAsync<T>(T value, JsonTypeInfo<T> typeInfo, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await StartAsync(ct).ConfigureAwait(false);
            var body = response.BodyWriter;
            body.Write(DataPrefix);
            if (_json is null)
            {
                _json = new Utf8JsonWriter(body, new JsonWriterOptions { Encoder = typeInfo.Options.Encoder, SkipValidation = true });
            }
            else
            {
                _json.Reset(body);
            }

            JsonSerializer.Serialize(_json, value, typeInfo);
            _json.Flush();
            body.Write(EventEnd);
            _unflushed = true;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Sends the events written since the last flush.</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_unflushed)
            {
                _unflushed = false;
                await response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
            }
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
            response.BodyWriter.Write(bytes);
            _unflushed = false;
            await response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    public void Dispose()
    {
        _json?.Dispose();
        _lock.Dispose();
    }
}
