using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using k8s;
using k8s.Models;
using KServe.Node.Runtime;

namespace KServe.Node.Benchmarks.Runtime;

/// <summary>
/// Cost of one watch event in the informer: parsing the watch line (ours, one pass over UTF-8, against
/// KubernetesClient's Watcher path as the anchor: a string line deserialized twice), and applying it to the cache
/// (indexes, a handler that enqueues the key into a work queue).
/// </summary>
[MemoryDiagnoser]
public class InformerEventBenchmarks : IDisposable
{
    private const int Objects = 1_000;
    private byte[][] _linesUtf8 = [];
    private string[] _lines = [];
    private WatchEvent<V1ConfigMap>[] _events = [];
    private Informer<V1ConfigMap> _informer = null!;
    private WorkQueue<ObjectKey> _queue = null!;
    private Kubernetes _client = null!;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        _lines = [.. Enumerable.Range(0, Objects).Select(Line)];
        _linesUtf8 = [.. _lines.Select(Encoding.UTF8.GetBytes)];
        _events = [.. _linesUtf8.Select(b => ResourceClient<V1ConfigMap>.ParseEvent(new ReadOnlySequence<byte>(b)))];

        // The informer is never started: Apply feeds it directly, so no server is needed.
        _client = new Kubernetes(new KubernetesClientConfiguration { Host = "http://127.0.0.1:1" });
        _informer = new Informer<V1ConfigMap>(new ResourceClient<V1ConfigMap>(_client));
        _informer.AddIndex("by-app", o => o.Metadata.Labels is { } l && l.TryGetValue("app", out var v) ? [v] : []);
        _queue = new WorkQueue<ObjectKey>();
        _informer.AddEventHandler(e => _queue.Add(ObjectKey.From(e.Object)));
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _informer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _queue.Dispose();
        _client.Dispose();
        GC.SuppressFinalize(this);
    }

    [Benchmark(Baseline = true)]
    public V1ConfigMap ParseLine_KubernetesClientWatcherPath()
    {
        // What k8s.Watcher does per line: a generic pass to look for a Status, then the typed pass.
        var line = _lines[_next++ % Objects];
        var generic = KubernetesJson.Deserialize<Watcher<KubernetesObject>.WatchEvent>(line);
        if (generic.Object.Kind == "Status")
        {
            throw new InvalidOperationException("unexpected status");
        }

        return KubernetesJson.Deserialize<Watcher<V1ConfigMap>.WatchEvent>(line).Object;
    }

    [Benchmark]
    public V1ConfigMap ParseLine_Runtime() =>
        ResourceClient<V1ConfigMap>.ParseEvent(new ReadOnlySequence<byte>(_linesUtf8[_next++ % Objects])).Object;

    [Benchmark]
    public int ApplyEvent_CacheIndexesAndEnqueue()
    {
        var e = _events[_next++ % Objects];
        // Alternate Added and Modified with a fresh resourceVersion so that every apply is a real change.
        e.Object.Metadata.ResourceVersion = _next.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _informer.Apply(new WatchEvent<V1ConfigMap>(WatchEventType.Modified, e.Object));
        if (_queue.Count >= Objects)
        {
            while (_queue.Count > 0)
            {
                var (key, _) = _queue.GetAsync().AsTask().GetAwaiter().GetResult();
                _queue.Done(key);
            }
        }

        return _informer.Count;
    }

    private static string Line(int i) =>
        $$$$"""{"type":"MODIFIED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-{{{{i}}}}","namespace":"ns-{{{{i % 10}}}}","uid":"6b1b1f7e-0000-4000-8000-{{{{i:D12}}}}","resourceVersion":"{{{{1000 + i}}}}","creationTimestamp":"2026-01-01T00:00:00Z","labels":{"app":"app-{{{{i % 20}}}}","tier":"backend"},"annotations":{"note":"benchmark"}},"data":{"model":"s3://bucket/models/m-{{{{i}}}}","size":"123456789","format":"gguf"}}}""";
}
