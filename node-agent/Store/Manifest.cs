using System.Text.Json.Serialization;

namespace KServe.Node.Agent.Store;

/// <summary>
/// The completion marker of a model: <c>{root}/.state/{storageKey}.json</c>, written after the atomic
/// rename. A folder under <c>models/</c> without it is not complete.
/// </summary>
internal sealed class ModelManifest
{
    public int Version { get; set; } = 1;
    public string StorageKey { get; set; } = "";
    public string SourceUri { get; set; } = "";
    public long TotalBytes { get; set; }
    public DateTimeOffset CompletedAt { get; set; }
    public double DurationSeconds { get; set; }
    public List<ManifestFile> Files { get; set; } = [];
}

internal sealed class ManifestFile
{
    public string Path { get; set; } = "";
    public long Size { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Md5 { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Sha256 { get; set; }
}

/// <summary>What a staging folder is downloading, so that a restarted agent can resume the same bytes.</summary>
internal sealed class StagingPlan
{
    public string SourceUri { get; set; } = "";
    public long ChunkSize { get; set; }
    public List<PlannedFile> Files { get; set; } = [];
}

internal sealed record PlannedFile(string Path, long? Size, string? Md5, string? Sha256, string? Version);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ModelManifest))]
[JsonSerializable(typeof(StagingPlan))]
internal sealed partial class StoreJsonContext : JsonSerializerContext;
