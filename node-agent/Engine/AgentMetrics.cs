using Prometheus;

namespace KServe.Node.Agent.Engine;

/// <summary>The agent's Prometheus families (prometheus-net, default registry).</summary>
internal static class AgentMetrics
{
    public static readonly Gauge CacheUsedBytes = Metrics.CreateGauge(
        "kserve_node_cache_used_bytes", "Bytes used by complete models and staging folders in the cache root.");

    public static readonly Gauge CacheCapacityBytes = Metrics.CreateGauge(
        "kserve_node_cache_capacity_bytes", "Capacity of the cache: the storage limit if set, else the file system size.");

    public static readonly Gauge CacheFreeBytes = Metrics.CreateGauge(
        "kserve_node_cache_free_bytes", "Free bytes on the cache file system.");

    public static readonly Gauge Models = Metrics.CreateGauge(
        "kserve_node_models", "Models by state (KServe ModelStatus).", new GaugeConfiguration { LabelNames = ["state"] });

    public static readonly Counter DownloadBytes = Metrics.CreateCounter(
        "kserve_node_download_bytes_total", "Bytes received from model sources.");

    public static readonly Histogram DownloadDuration = Metrics.CreateHistogram(
        "kserve_node_download_duration_seconds", "Duration of successful model downloads.",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.5, 2, 16) });

    public static readonly Counter DownloadFailures = Metrics.CreateCounter(
        "kserve_node_download_failures_total", "Failed model downloads by reason.", new CounterConfiguration { LabelNames = ["reason"] });

    public static readonly Gauge UnverifiedFiles = Metrics.CreateGauge(
        "kserve_node_unverified_files", "Files of complete models whose bytes could be checked by size only (the source offered no checksum).");

    public static readonly Counter GcBytes = Metrics.CreateCounter(
        "kserve_node_gc_bytes_total", "Bytes removed by garbage collection of models no longer listed.");

    public static readonly Counter Retries = Metrics.CreateCounter(
        "kserve_node_download_retries_total", "Ranged GETs retried after a transient failure.");
}
