using System.ComponentModel.DataAnnotations;

namespace KServe.Node.Agent.Engine;

/// <summary>How models are fetched (configuration section <c>Download</c>).</summary>
internal sealed class DownloadOptions
{
    public const string Section = "Download";

    /// <summary>Parallel ranged GETs per model.</summary>
    [Range(1, 128)]
    public int Streams { get; set; } = 8;

    /// <summary>Size of one ranged GET (also the resume granularity after a restart).</summary>
    [Range(1L << 20, 1L << 32)]
    public long ChunkSizeBytes { get; set; } = 32L << 20;

    /// <summary>Models downloading at once.</summary>
    [Range(1, 64)]
    public int MaxConcurrentModels { get; set; } = 2;

    /// <summary>Attempts per chunk (or listing) on transient failures, with exponential backoff; progress resets the count.</summary>
    [Range(1, 1000)]
    public int MaxAttempts { get; set; } = 12;

    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A read that yields nothing for this long counts as a dropped connection.</summary>
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Verify checksums (ETag MD5, SHA-256) where the source gives them; sizes are always checked.</summary>
    public bool Verify { get; set; } = true;

    /// <summary>Free space kept in reserve beyond the model's size.</summary>
    [Range(0, long.MaxValue)]
    public long ReserveBytes { get; set; } = 64L << 20;

    /// <summary>
    /// How long a model stays on disk after it left the desired state (and how long a replaced folder is
    /// kept aside for pods that still read it). Counted from the first pass that found it absent; 0 deletes
    /// at that pass.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "3650.00:00:00")]
    public TimeSpan GcGrace { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>Bytes done and total of a running download, read by whoever reports progress.</summary>
internal sealed class ProgressCounter
{
    private long _done;
    private long _total = -1;

    public long Done => Interlocked.Read(ref _done);

    public long? Total => Interlocked.Read(ref _total) is var t and >= 0 ? t : null;

    public void Add(long bytes) => Interlocked.Add(ref _done, bytes);

    public void SetTotal(long? total) => Interlocked.Exchange(ref _total, total ?? -1);

    public void Reset() => Interlocked.Exchange(ref _done, 0);
}
