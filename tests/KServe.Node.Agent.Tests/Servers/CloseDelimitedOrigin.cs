using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KServe.Node.Agent.Tests.Servers;

/// <summary>
/// An HTTP/1.1 origin on a raw loopback socket whose GET bodies have no length and no chunked framing: the body
/// ends where the server closes the connection, as HTTP/1.0-style servers and some proxies answer. Kestrel always
/// frames its bodies, so this one writes the bytes itself. It can cut the body short (<see cref="SendBytes"/>) and
/// send extra headers with every answer (a digest, say).
/// </summary>
public sealed class CloseDelimitedOrigin : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly byte[] _body;

    public CloseDelimitedOrigin(byte[] body)
    {
        _body = body;
        _listener.Start();
        _loop = Task.Run(AcceptLoop);
    }

    public string Url(string path) => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}{path}";

    /// <summary>How many bytes of the body a GET sends before the connection is closed (default: all).</summary>
    public int? SendBytes { get; set; }

    /// <summary>Header lines (without CRLF) added to every answer.</summary>
    public List<string> Headers { get; } = [];

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }
            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            var request = new StringBuilder();
            var buffer = new byte[4096];
            while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(buffer);
                if (n == 0)
                {
                    return;
                }
                request.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
            var head = request.ToString().StartsWith("HEAD ", StringComparison.Ordinal);
            var answer = new StringBuilder("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n");
            foreach (var h in Headers)
            {
                answer.Append(h).Append("\r\n");
            }
            answer.Append("\r\n");
            await stream.WriteAsync(Encoding.ASCII.GetBytes(answer.ToString()));
            if (!head)
            {
                await stream.WriteAsync(_body.AsMemory(0, SendBytes ?? _body.Length));
            }
            await stream.FlushAsync();
            client.Client.Shutdown(SocketShutdown.Both);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        _stop.Dispose();
    }
}
