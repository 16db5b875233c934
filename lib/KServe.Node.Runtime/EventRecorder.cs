using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.Runtime;

/// <summary>
/// Records core/v1 Events on objects (what <c>kubectl describe</c> shows). A repeat of the same event on the same
/// object bumps the count of the existing Event instead of creating another. Recording never throws: a failure is
/// logged, because an Event is never worth failing a reconcile for.
/// </summary>
public sealed class EventRecorder
{
    /// <summary>Event type of normal progress.</summary>
    public const string Normal = "Normal";

    /// <summary>Event type of a problem.</summary>
    public const string Warning = "Warning";

    private const int MaxCached = 4096;
    private readonly Kubernetes _client;
    private readonly string _component;
    private readonly string _instance;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<(string, string, string, string), (string Namespace, string Name, int Count)> _seen = [];
    private readonly Lock _lock = new();

    /// <summary>Creates a recorder that reports as <paramref name="component"/> (e.g. <c>cache-controller</c>).</summary>
    public EventRecorder(Kubernetes client, string component, string? instance = null, TimeProvider? timeProvider = null, ILogger<EventRecorder>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(component);
        _client = client;
        _component = component;
        _instance = instance ?? Environment.MachineName;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Records a Normal event.</summary>
    public Task NormalAsync(IKubernetesObject<V1ObjectMeta> obj, string reason, string message, CancellationToken ct = default) =>
        RecordAsync(obj, Normal, reason, message, ct);

    /// <summary>Records a Warning event.</summary>
    public Task WarningAsync(IKubernetesObject<V1ObjectMeta> obj, string reason, string message, CancellationToken ct = default) =>
        RecordAsync(obj, Warning, reason, message, ct);

    /// <summary>Records an event of <paramref name="type"/> with a CamelCase <paramref name="reason"/>.</summary>
    public async Task RecordAsync(IKubernetesObject<V1ObjectMeta> obj, string type, string reason, string message, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(obj);
        ArgumentException.ThrowIfNullOrEmpty(reason);
        var kind = obj.Kind ?? ResourceType.Of(obj.GetType()).Kind;
        try
        {
            var involved = InvolvedObject(obj, kind);
            var now = _time.GetUtcNow().UtcDateTime;
            var cacheKey = (involved.Uid ?? $"{involved.NamespaceProperty}/{kind}/{involved.Name}", type, reason, message);
            (string Namespace, string Name, int Count) seen;
            bool repeat;
            lock (_lock)
            {
                repeat = _seen.TryGetValue(cacheKey, out seen);
            }

            if (repeat)
            {
                try
                {
                    var patch = KubeTransport.RawContent(
                        $$"""{"count":{{seen.Count + 1}},"lastTimestamp":"{{now:yyyy-MM-ddTHH:mm:ssZ}}"}""", "application/merge-patch+json");
                    using (patch)
                    {
                        using var _ = await KubeTransport.SendAsync(
                            _client, HttpMethod.Patch, $"/api/v1/namespaces/{seen.Namespace}/events/{seen.Name}", patch, streaming: false, ct).ConfigureAwait(false);
                    }

                    Remember(cacheKey, seen with { Count = seen.Count + 1 });
                    return;
                }
                catch (KubernetesApiException e) when (e.IsNotFound)
                {
                    // Events expire (one hour by default): start a new one.
                }
            }

            var ns = string.IsNullOrEmpty(involved.NamespaceProperty) ? "default" : involved.NamespaceProperty;
            var name = $"{involved.Name}.{_time.GetUtcNow().ToUnixTimeMilliseconds() * 1000:x}{Random.Shared.Next(0x1000):x3}";
            var evt = new Corev1Event
            {
                ApiVersion = "v1",
                Kind = "Event",
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
                InvolvedObject = involved,
                Type = type,
                Reason = reason,
                Message = message,
                Count = 1,
                FirstTimestamp = now,
                LastTimestamp = now,
                Source = new V1EventSource { Component = _component, Host = _instance },
                ReportingComponent = _component,
                ReportingInstance = _instance,
            };
            using var content = KubeTransport.JsonContent(evt);
            using var response = await KubeTransport.SendAsync(_client, HttpMethod.Post, $"/api/v1/namespaces/{ns}/events", content, streaming: false, ct).ConfigureAwait(false);
            Remember(cacheKey, (ns, name, 1));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            Log.EventFailed(_logger, e, reason, kind, obj.Metadata?.Name ?? "");
        }
    }

    private void Remember((string, string, string, string) key, (string, string, int) value)
    {
        lock (_lock)
        {
            if (_seen.Count >= MaxCached && !_seen.ContainsKey(key))
            {
                // A crude bound: forgetting only costs a fresh Event instead of a count bump.
                _seen.Clear();
            }

            _seen[key] = value;
        }
    }

    private static V1ObjectReference InvolvedObject(IKubernetesObject<V1ObjectMeta> obj, string kind)
    {
        var type = ResourceType.Of(obj.GetType());
        return new V1ObjectReference
        {
            ApiVersion = obj.ApiVersion ?? type.ApiVersion,
            Kind = kind,
            Name = obj.Metadata?.Name,
            NamespaceProperty = obj.Metadata?.NamespaceProperty,
            Uid = obj.Metadata?.Uid,
            ResourceVersion = obj.Metadata?.ResourceVersion,
        };
    }
}
