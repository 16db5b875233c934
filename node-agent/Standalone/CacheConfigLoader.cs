using KServe.Node.Agent.Cli;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Store;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace KServe.Node.Agent.Standalone;

/// <summary>What a config folder asks for.</summary>
/// <param name="Models">The caches, in file order.</param>
/// <param name="StorageLimitBytes">The smallest node group storageLimit, if any.</param>
/// <param name="Errors">One line per problem, naming the file.</param>
/// <param name="Complete">False when some file could not be read and has no last good content: then nothing may be collected.</param>
internal sealed record StandaloneConfig(IReadOnlyList<ModelSpec> Models, long? StorageLimitBytes, IReadOnlyList<string> Errors, bool Complete);

/// <summary>
/// Reads <c>*.yaml</c> / <c>*.yml</c> files (several documents each allowed) holding KServe's own objects:
/// <c>LocalModelCache</c> (and <c>LocalModelNamespaceCache</c>) become models, keyed as KServe keys them;
/// a <c>LocalModelNodeGroup</c>'s <c>storageLimit</c> caps the cache. <c>spec.storage.parameters</c>
/// <c>allowPatterns</c> / <c>ignorePatterns</c> filter files. Other kinds are ignored; a bad document is
/// reported by file and name and does not stop the others.
/// A file that does not parse (a half-saved edit, a typo) counts with its last good content, kept in
/// <c>lastGoodDir</c> (under <c>.state/</c>, so it survives restarts); a file that never parsed, or a missing
/// folder, makes the picture incomplete, and the engine then collects nothing.
/// </summary>
internal static class CacheConfigLoader
{
    private static readonly IDeserializer Yaml = new DeserializerBuilder().Build();

    public static StandaloneConfig Load(string folder, SourceSettings settings, string? lastGoodDir = null, IStoreIo? io = null)
    {
        var models = new List<ModelSpec>();
        var errors = new List<string>();
        long? limit = null;
        var complete = true;
        if (!Directory.Exists(folder))
        {
            return new StandaloneConfig(models, null, [$"config folder {folder} does not exist; nothing is collected until it is back"], false);
        }
        var files = Directory.GetFiles(folder, "*.yaml").Concat(Directory.GetFiles(folder, "*.yml")).OrderBy(f => f, StringComparer.Ordinal).ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (lastGoodDir is not null)
        {
            Directory.CreateDirectory(lastGoodDir);
            // A deleted file is meant: its last good content goes too (the grace period still protects its models).
            var present = files.Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal);
            foreach (var stale in Directory.GetFiles(lastGoodDir).Where(f => !present.Contains(Path.GetFileName(f))))
            {
                File.Delete(stale);
            }
        }
        foreach (var file in files)
        {
            var name = Path.GetFileName(file);
            var lastGood = lastGoodDir is null ? null : Path.Combine(lastGoodDir, name);
            List<object?> docs;
            try
            {
                var text = File.ReadAllText(file);
                docs = ReadDocuments(text);
                if (lastGood is not null && (!File.Exists(lastGood) || File.ReadAllText(lastGood) != text))
                {
                    (io ?? PhysicalStoreIo.Instance).WriteFileAtomic(lastGood, System.Text.Encoding.UTF8.GetBytes(text));
                }
            }
            catch (Exception e) when (e is YamlException or IOException)
            {
                if (lastGood is not null && File.Exists(lastGood))
                {
                    errors.Add($"{name}: not valid YAML ({e.Message}); its last good content from {File.GetLastWriteTimeUtc(lastGood):u} is used until it parses");
                    docs = ReadDocuments(File.ReadAllText(lastGood));
                }
                else
                {
                    errors.Add($"{name}: not valid YAML ({e.Message}); nothing is collected until it parses");
                    complete = false;
                    continue;
                }
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
        return new StandaloneConfig(models, limit, errors, complete);
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
