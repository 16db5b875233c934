using System.Diagnostics.Metrics;

namespace KServe.Node.Runtime;

/// <summary>
/// The runtime's instruments on the <c>KServe.Node.Runtime</c> Meter (any exporter, e.g. a Prometheus bridge, can
/// listen): reconciles by controller and result, reconcile duration, queue depth.
/// </summary>
public static class RuntimeMetrics
{
    /// <summary>The Meter name.</summary>
    public const string MeterName = "KServe.Node.Runtime";

    private static readonly Meter s_meter = new(MeterName);

    internal static readonly Counter<long> Reconciles =
        s_meter.CreateCounter<long>("kserve_node_runtime_reconcile_total", description: "Reconciles by controller and result (done, requeue, error, terminal)");

    internal static readonly Histogram<double> ReconcileSeconds =
        s_meter.CreateHistogram<double>("kserve_node_runtime_reconcile_duration_seconds", unit: "s", description: "Reconcile duration");

    private static readonly List<(string Controller, Func<int> Depth)> s_queues = [];
    private static readonly Lock s_lock = new();

    static RuntimeMetrics()
    {
        s_meter.CreateObservableGauge("kserve_node_runtime_queue_depth", ObserveDepths, description: "Keys waiting in a controller's work queue");
    }

    internal static void TrackQueue(string controller, Func<int> depth)
    {
        lock (s_lock)
        {
            s_queues.Add((controller, depth));
        }
    }

    internal static void UntrackQueue(string controller)
    {
        lock (s_lock)
        {
            s_queues.RemoveAll(q => q.Controller == controller);
        }
    }

    private static IEnumerable<Measurement<int>> ObserveDepths()
    {
        lock (s_lock)
        {
            return [.. s_queues.Select(q => new Measurement<int>(q.Depth(), new KeyValuePair<string, object?>("controller", q.Controller)))];
        }
    }
}
