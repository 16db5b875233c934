using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace KServe.Node.Agent.Engine;

/// <summary>How models are fetched (configuration section <c>Download</c>).</summary>
internal sealed class DownloadOptions
{
    public const string Section = "Download";

    [Description("parallel ranged GETs per model")]
    [Range(1, 128)]
    public int Streams { get; set; } = 8;

    [Description("size of one ranged GET (also what a restart may fetch again per stream)")]
    [Range(1L << 20, 1L << 32)]
    public long ChunkSizeBytes { get; set; } = 32L << 20;

    [Description("models downloading at once")]
    [Range(1, 64)]
    public int MaxConcurrentModels { get; set; } = 2;

    [Description("attempts per chunk or listing on transient failures, with exponential backoff; progress resets the count")]
    [Range(1, 1000)]
    public int MaxAttempts { get; set; } = 12;

    [Description("first delay between attempts")]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    [Description("longest delay between attempts")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    [Description("a read that yields nothing for this long counts as a dropped connection")]
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromSeconds(60);

    [Description("verify checksums (ETag MD5, SHA-256) where the source gives them; sizes are always checked")]
    public bool Verify { get; set; } = true;

    /// <summary>Off by default: the agent is shared by every namespace of the node, and its own identity is not theirs.</summary>
    [Description("let S3 models with no keys configured use the AWS SDK's default credentials (the agent's environment, profile files, IRSA web identity, instance role); off, they are fetched anonymously")]
    public bool AwsDefaultCredentials { get; set; }

    [Description("free space kept in reserve beyond the model's size")]
    [Range(0, long.MaxValue)]
    public long ReserveBytes { get; set; } = 64L << 20;

    /// <summary>Counted from the first pass that found the model absent, and kept across restarts (a restart may lengthen it, never shorten it).</summary>
    [Description("how long a model stays on disk after it left the desired state, and a replaced folder is kept aside for pods still reading it; 0 deletes at once")]
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
