using System.Text.Json.Serialization;

namespace KServe.Node.Agent.Store;

/// <summary>
/// The completion marker of a model: <c>{root}/.state/{storageKey}.json</c>, written after the atomic
/// rename. A folder under <c>models/</c> without it is not complete. It says what a consumer needs: which
/// caches it serves, where it came from (redacted), the filter, and every file with its size, checksum and
/// how far it was verified.
/// </summary>
internal sealed class ModelManifest
{
    public int Version { get; set; } = 2;
    public string StorageKey { get; set; } = "";

    /// <summary>The status keys (cache names) this folder serves.</summary>
    public List<string> Caches { get; set; } = [];

    /// <summary>The source URI without user info or query (never a credential).</summary>
    public string SourceUri { get; set; } = "";

    /// <summary>
    /// SHA-256 of the full source URI: the storage key keeps only 64 bits of it, so two URIs could share a key; this
    /// tells them apart without storing the URI. Empty in manifests written before it was recorded.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public string SourceHash { get; set; } = "";

    /// <summary>allowPatterns / ignorePatterns the folder was built with; null in manifests written before filters were recorded.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ManifestFilter? Filter { get; set; }

    /// <summary><see cref="Verification.Checksum"/> when every file was checked against a source checksum, else <see cref="Verification.SizeOnly"/>.</summary>
    public string Verification { get; set; } = Store.Verification.SizeOnly;

    /// <summary><c>downloaded</c>, or <c>adopted</c> for a folder found on disk that matched the source.</summary>
    public string Origin { get; set; } = "downloaded";

    public long TotalBytes { get; set; }
    public DateTimeOffset CompletedAt { get; set; }
    public double DurationSeconds { get; set; }
    public List<ManifestFile> Files { get; set; } = [];
}

internal sealed class ManifestFilter
{
    public string AllowPatterns { get; set; } = "";
    public string IgnorePatterns { get; set; } = "";
}

internal static class Verification
{
    public const string Checksum = "checksum";
    public const string SizeOnly = "size-only";

    public static string Overall(IEnumerable<ManifestFile> files) => files.All(f => f.Verified == Checksum) ? Checksum : SizeOnly;
}

internal sealed class ManifestFile
{
    public string Path { get; set; } = "";
    public long Size { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Md5 { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Sha256 { get; set; }

    /// <summary>The git blob SHA-1 the Hub lists for a file not in LFS.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? GitSha1 { get; set; }

    /// <summary><see cref="Verification.Checksum"/> or <see cref="Verification.SizeOnly"/>.</summary>
    public string Verified { get; set; } = Verification.SizeOnly;
}

/// <summary>
/// What a staging folder is downloading, so that a restarted agent can resume the same bytes. The URI is
/// stored redacted, with a hash of the full URI to tell whether a resume fetches the same thing.
/// </summary>
internal sealed class StagingPlan
{
    public string SourceUri { get; set; } = "";
    public string SourceHash { get; set; } = "";
    public long ChunkSize { get; set; }
    public List<PlannedFile> Files { get; set; } = [];
}

// SupportsRanges is part of the plan: journal entries are chunk indices, which mean other bytes when a source stops
// (or starts) answering ranges, so a difference resets the plan instead of misreading the journal.
internal sealed record PlannedFile(string Path, long? Size, string? Md5, string? Sha256, string? Version, bool SupportsRanges = true);

/// <summary>Since when each model absent from the desired state has been absent (<c>.state/absent.json</c>).</summary>
internal sealed class AbsentKeys
{
    public Dictionary<string, DateTimeOffset> Since { get; set; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ModelManifest))]
[JsonSerializable(typeof(StagingPlan))]
[JsonSerializable(typeof(AbsentKeys))]
internal sealed partial class StoreJsonContext : JsonSerializerContext;
