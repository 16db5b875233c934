using System.Net;
using System.Net.Sockets;

namespace KServe.Node.TestKit.Net;

/// <summary>
/// A loopback TCP proxy in front of a real server that counts the bytes the server sends through it and
/// can take the source down: once <see cref="KillAfterBytes"/> bytes have gone out it closes every
/// connection and stops listening (the source is dead), signals <see cref="Killed"/>, and comes back on
/// the same port when <see cref="Restart"/> is called.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly IPEndPoint _upstream;
    private readonly Lock _lock = new();
    private readonly List<TcpClient> _connections = [];
    private TcpListener? _listener;
    private CancellationTokenSource _cts = new();
    private long _sent;
    private readonly TaskCompletionSource _killed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public FaultProxy(int upstreamPort)
    {
        _upstream = new IPEndPoint(IPAddress.Loopback, upstreamPort);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptLoopAsync(_listener, _cts.Token);
    }

    public int Port { get; }

    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>Bytes sent by the server to clients so far (headers included).</summary>
    public long BytesSent => Interlocked.Read(ref _sent);

    /// <summary>When set, the proxy dies after this many bytes have been sent in total.</summary>
    public long? KillAfterBytes { get; set; }

    /// <summary>When set, the server's bytes are paced to about this rate (so a test can act mid-transfer).</summary>
    public long? BytesPerSecond { get; set; }

    private readonly List<(long Bytes, TaskCompletionSource Signal)> _watchers = [];

    /// <summary>Completes once at least <paramref name="bytes"/> have been sent in total.</summary>
    public Task WhenSentAtLeast(long bytes)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_watchers)
        {
            _watchers.Add((bytes, tcs));
        }
        Notify();
        return tcs.Task;
    }

    private void Notify()
    {
        var sent = BytesSent;
        lock (_watchers)
        {
            foreach (var w in _watchers.Where(w => w.Bytes <= sent).ToList())
            {
                w.Signal.TrySetResult();
                _watchers.Remove(w);
            }
        }
    }

    /// <summary>Completes when the proxy killed itself; carries nothing.</summary>
    public Task Killed => _killed.Task;

    public bool IsUp => _listener is not null;

    /// <summary>Brings the source back on the same port.</summary>
    public void Restart()
    {
        lock (_lock)
        {
            if (_listener is not null)
            {
                return;
            }
            KillAfterBytes = null;
            _cts = new CancellationTokenSource();
            _listener = new TcpListener(IPAddress.Loopback, Port);
            _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _listener.Start();
            _ = AcceptLoopAsync(_listener, _cts.Token);
        }
    }

    private void Kill()
    {
        lock (_lock)
        {
            if (_listener is null)
            {
                return;
            }
            _cts.Cancel();
            _listener.Stop();
            _listener = null;
            foreach (var c in _connections)
            {
                // RST rather than FIN: the client sees the connection die mid-body.
                c.Client.LingerState = new LingerOption(true, 0);
                c.Dispose();
            }
            _connections.Clear();
            _killed.TrySetResult();
        }
    }

    private async Task AcceptLoopAsync(TcpListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(ct).ConfigureAwait(false);
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            _ = HandleAsync(client, ct);
        }
    }

    private async Task HandleAsync(TcpClient client, CancellationToken ct)
    {
        using var upstream = new TcpClient();
        lock (_lock)
        {
            _connections.Add(client);
            _connections.Add(upstream);
        }
        try
        {
            client.NoDelay = true;
            await upstream.ConnectAsync(_upstream, ct).ConfigureAwait(false);
            var up = upstream.GetStream();
            var down = client.GetStream();
            var toServer = PumpAsync(down, up, count: false, ct);
            var toClient = PumpAsync(up, down, count: true, ct);
            await Task.WhenAny(toServer, toClient).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A dropped connection is what this class is for.
        }
        finally
        {
            lock (_lock)
            {
                _connections.Remove(client);
                _connections.Remove(upstream);
            }
            client.Dispose();
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, bool count, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var n = await from.ReadAsync(buffer, ct).ConfigureAwait(false);
            if (n == 0)
            {
                to.Socket.Shutdown(SocketShutdown.Send);
                return;
            }
            if (count)
            {
                var limit = KillAfterBytes;
                var before = Interlocked.Read(ref _sent);
                if (limit is { } l && before + n >= l)
                {
                    // Send exactly up to the limit, then die.
                    var part = (int)Math.Max(0, l - before);
                    if (part > 0)
                    {
                        await to.WriteAsync(buffer.AsMemory(0, part), ct).ConfigureAwait(false);
                        Interlocked.Add(ref _sent, part);
                    }
                    Notify();
                    Kill();
                    return;
                }
                Interlocked.Add(ref _sent, n);
                Notify();
                if (BytesPerSecond is { } rate && rate > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds(n / (double)rate), ct).ConfigureAwait(false);
                }
            }
            await to.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _cts.Dispose();
        return ValueTask.CompletedTask;
    }
}
