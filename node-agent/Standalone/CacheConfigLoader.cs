using KServe.Node.Agent.Cli;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace KServe.Node.Agent.Standalone;

/// <summary>What a config folder asks for.</summary>
internal sealed record StandaloneConfig(IReadOnlyList<ModelSpec> Models, long? StorageLimitBytes, IReadOnlyList<string> Errors);

/// <summary>
/// Reads <c>*.yaml</c> / <c>*.yml</c> files (several documents each allowed) holding KServe's own objects:
/// <c>LocalModelCache</c> (and <c>LocalModelNamespaceCache</c>) become models, keyed as KServe keys them;
/// a <c>LocalModelNodeGroup</c>'s <c>storageLimit</c> caps the cache. <c>spec.storage.parameters</c>
/// <c>allowPatterns</c> / <c>ignorePatterns</c> filter files. Other kinds are ignored; a bad document is
/// reported by file and name and does not stop the others.
/// </summary>
internal static class CacheConfigLoader
{
    private static readonly IDeserializer Yaml = new DeserializerBuilder().Build();

    public static StandaloneConfig Load(string folder, SourceSettings settings)
    {
        var models = new List<ModelSpec>();
        var errors = new List<string>();
        long? limit = null;
        if (!Directory.Exists(folder))
        {
            return new StandaloneConfig(models, null, [$"config folder {folder} does not exist"]);
        }
        var files = Directory.GetFiles(folder, "*.yaml").Concat(Directory.GetFiles(folder, "*.yml")).OrderBy(f => f, StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            var name = Path.GetFileName(file);
            List<object?> docs;
            try
            {
                docs = ReadDocuments(File.ReadAllText(file));
            }
            catch (Exception e) when (e is YamlException or IOException)
            {
                errors.Add($"{name}: not valid YAML: {e.Message}");
                continue;
            }
            foreach (var doc in docs)
            {
                if (doc is not Dictionary<object, object> obj)
                {
                    continue;
                }
                var kind = Str(obj, "kind");
                var meta = Map(obj, "metadata");
                var objName = meta is null ? null : Str(meta, "name");
                var spec = Map(obj, "spec");
                switch (kind)
                {
                    case "LocalModelCache" or "LocalModelNamespaceCache":
                        if (string.IsNullOrEmpty(objName))
                        {
                            errors.Add($"{name}: {kind} without metadata.name");
                            continue;
                        }
                        var ns = kind == "LocalModelNamespaceCache" && meta is not null ? Str(meta, "namespace") ?? "default" : null;
                        var statusKey = ns is null ? objName : $"{ns}/{objName}";
                        var uri = spec is null ? null : Str(spec, "sourceModelUri");
                        if (string.IsNullOrWhiteSpace(uri))
                        {
                            errors.Add($"{name}: {kind}/{objName}: spec.sourceModelUri is required");
                            continue;
                        }
                        if (!seen.Add(statusKey))
                        {
                            errors.Add($"{name}: {kind}/{objName} is defined twice; the first definition is used");
                            continue;
                        }
                        var parameters = spec is null ? null : Map(Map(spec, "storage") ?? [], "parameters");
                        var filter = new FileFilter(parameters is null ? null : Str(parameters, "allowPatterns"),
                            parameters is null ? null : Str(parameters, "ignorePatterns"));
                        models.Add(new ModelSpec(statusKey, uri.Trim(), filter, settings));
                        break;
                    case "LocalModelNodeGroup":
                        var raw = spec is null ? null : Str(spec, "storageLimit");
                        if (raw is null)
                        {
                            break;
                        }
                        if (!Quantity.TryParseBytes(raw, out var bytes))
                        {
                            errors.Add($"{name}: LocalModelNodeGroup/{objName}: spec.storageLimit '{raw}' is not a quantity");
                            break;
                        }
                        limit = limit is { } l ? Math.Min(l, bytes) : bytes;
                        break;
                }
            }
        }
        return new StandaloneConfig(models, limit, errors);
    }

    private static List<object?> ReadDocuments(string text)
    {
        var docs = new List<object?>();
        var parser = new Parser(new StringReader(text));
        parser.Consume<StreamStart>();
        while (parser.Accept<DocumentStart>(out _))
        {
            docs.Add(Yaml.Deserialize<object?>(parser));
        }
        return docs;
    }

    private static string? Str(Dictionary<object, object> m, string key) => m.TryGetValue(key, out var v) ? v?.ToString() : null;

    private static Dictionary<object, object>? Map(Dictionary<object, object> m, string key) =>
        m.TryGetValue(key, out var v) ? v as Dictionary<object, object> : null;
}
