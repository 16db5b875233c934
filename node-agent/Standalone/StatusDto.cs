using System.Text.Json.Serialization;

namespace KServe.Node.Agent.Standalone;

/// <summary>The status view (<c>GET /status</c>), also read by <c>node-agent list --url</c>.</summary>
internal sealed class AgentStatusDto
{
    public string Mode { get; set; } = "";
    public string Root { get; set; } = "";
    public StorageDto Storage { get; set; } = new();
    public List<ModelDto> Models { get; set; } = [];
    public List<string> ConfigErrors { get; set; } = [];
}

internal sealed class StorageDto
{
    public long UsedBytes { get; set; }
    public long FreeBytes { get; set; }
    public long CapacityBytes { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? LimitBytes { get; set; }
}

internal sealed class ModelDto
{
    public string Name { get; set; } = "";
    public string Uri { get; set; } = "";
    public string StorageKey { get; set; } = "";
    public string State { get; set; } = "";
    public long BytesDone { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? BytesTotal { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Reason { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Message { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public string Path { get; set; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? Files { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(AgentStatusDto))]
internal sealed partial class StatusJsonContext : JsonSerializerContext;
