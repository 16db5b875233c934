using System.Security.Cryptography;
using System.Text.Json;
using KServe.Node.Agent.Sources;

namespace KServe.Node.Agent.Store;

/// <summary>
/// The node's model cache on disk (the house layout):
/// <c>{root}/models/{storageKey}/</c> the complete model, exactly as in the source;
/// <c>{root}/.staging/{storageKey}.{id}/</c> downloads in progress (outside <c>models/</c>, so that
/// garbage collection of unlisted folders never races a download);
/// <c>{root}/.state/{storageKey}.json</c> the manifest, written after the atomic rename: the completion marker.
/// </summary>
internal sealed class ModelStore
{
    private readonly IStoreIo _io;

    public ModelStore(string root, IStoreIo? io = null)
    {
        Root = Path.GetFullPath(root);
        _io = io ?? PhysicalStoreIo.Instance;
        Directory.CreateDirectory(ModelsDir);
        Directory.CreateDirectory(StagingDir);
        Directory.CreateDirectory(StateDir);
    }

    public string Root { get; }
    public string ModelsDir => Path.Combine(Root, "models");
    public string StagingDir => Path.Combine(Root, ".staging");
    public string StateDir => Path.Combine(Root, ".state");
    public IStoreIo Io => _io;

    public string ModelPath(string storageKey) => Path.Combine(ModelsDir, CheckKey(storageKey));
    private string ManifestPath(string storageKey) => Path.Combine(StateDir, CheckKey(storageKey) + ".json");
    private string PendingManifestPath(string storageKey) => ManifestPath(storageKey) + ".pending";

    /// <summary>
    /// The manifest of a complete model, or null. A commit that was interrupted between the folder rename
    /// and the manifest rename is finished here (the pending manifest was durable before the rename).
    /// </summary>
    public ModelManifest? GetManifest(string storageKey)
    {
        var path = ManifestPath(storageKey);
        var folder = ModelPath(storageKey);
        if (!File.Exists(path) && File.Exists(PendingManifestPath(storageKey)) && Directory.Exists(folder))
        {
            File.Move(PendingManifestPath(storageKey), path);
            _io.FlushDirectory(StateDir);
        }
        if (!File.Exists(path) || !Directory.Exists(folder))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), StoreJsonContext.Default.ModelManifest);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Cheap check that a complete model is still intact: every manifest file exists with its size and
    /// nothing else is missing. (Checksums were verified when written; re-hashing terabytes periodically
    /// would cost more than it finds.)
    /// </summary>
    public string? CheckIntact(string storageKey)
    {
        var m = GetManifest(storageKey);
        if (m is null)
        {
            return "not downloaded";
        }
        var folder = ModelPath(storageKey);
        foreach (var f in m.Files)
        {
            var info = new FileInfo(PathGuard.Combine(folder, f.Path));
            if (!info.Exists)
            {
                return $"file {f.Path} is missing";
            }
            if (info.Length != f.Size)
            {
                return $"file {f.Path} has {info.Length} bytes, expected {f.Size}";
            }
        }
        return null;
    }

    /// <summary>The staging folder of a key: an existing one (to resume) or a new one.</summary>
    public StagingArea OpenStaging(string storageKey)
    {
        CheckKey(storageKey);
        var existing = Directory.Exists(StagingDir)
            ? Directory.GetDirectories(StagingDir, storageKey + ".*").OrderBy(d => d, StringComparer.Ordinal).ToList()
            : [];
        foreach (var extra in existing.Skip(1))
        {
            _io.DeleteDirectory(extra);
        }
        var dir = existing.FirstOrDefault() ?? Path.Combine(StagingDir, storageKey + "." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(dir);
        return new StagingArea(dir, _io);
    }

    /// <summary>Bytes already in a staging folder for this key (for the free-space check of a resume).</summary>
    public long StagedBytes(string storageKey)
    {
        long total = 0;
        foreach (var d in Directory.GetDirectories(StagingDir, CheckKey(storageKey) + ".*"))
        {
            total += FolderBytes(d);
        }
        return total;
    }

    /// <summary>
    /// Publishes a verified staging folder: the pending manifest is made durable, the folder is renamed
    /// into <c>models/</c> atomically, then the manifest is renamed into place (the completion marker).
    /// </summary>
    public void Commit(StagingArea staging, ModelManifest manifest)
    {
        var key = CheckKey(manifest.StorageKey);
        var target = ModelPath(key);
        if (Directory.Exists(target))
        {
            // A folder without a manifest is an incomplete leftover; replace it.
            File.Delete(ManifestPath(key));
            _io.DeleteDirectory(target);
        }
        _io.WriteFileAtomic(PendingManifestPath(key), JsonSerializer.SerializeToUtf8Bytes(manifest, StoreJsonContext.Default.ModelManifest));
        _io.MoveDirectory(staging.FilesDir, target);
        _io.FlushDirectory(ModelsDir);
        File.Move(PendingManifestPath(key), ManifestPath(key), overwrite: true);
        _io.FlushDirectory(StateDir);
        staging.Delete();
    }

    /// <summary>Removes a model: manifest first (so it is never reported complete), then the folder and any staging.</summary>
    public long Remove(string storageKey)
    {
        var bytes = 0L;
        File.Delete(ManifestPath(storageKey));
        File.Delete(PendingManifestPath(storageKey));
        var folder = ModelPath(storageKey);
        if (Directory.Exists(folder))
        {
            bytes += FolderBytes(folder);
            _io.DeleteDirectory(folder);
        }
        foreach (var d in Directory.GetDirectories(StagingDir, storageKey + ".*"))
        {
            bytes += FolderBytes(d);
            _io.DeleteDirectory(d);
        }
        return bytes;
    }

    /// <summary>
    /// Deletes every model folder, manifest and staging folder whose key is not in <paramref name="keep"/>
    /// (KServe's deleteModels, extended to the store's own folders). Returns the bytes freed.
    /// </summary>
    public long CollectGarbage(IReadOnlySet<string> keep, IReadOnlySet<string>? busy = null)
    {
        var freed = 0L;
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in Directory.GetDirectories(ModelsDir))
        {
            keys.Add(Path.GetFileName(d));
        }
        foreach (var f in Directory.GetFiles(StateDir, "*.json*"))
        {
            keys.Add(Path.GetFileName(f).Split('.')[0]);
        }
        foreach (var d in Directory.GetDirectories(StagingDir))
        {
            keys.Add(Path.GetFileName(d).Split('.')[0]);
        }
        foreach (var key in keys)
        {
            if (!keep.Contains(key) && (busy is null || !busy.Contains(key)) && IsSafeName(key))
            {
                freed += Remove(key);
            }
        }
        return freed;
    }

    /// <summary>Bytes used by complete models (manifest totals) and by staging.</summary>
    public long UsedBytes()
    {
        long used = 0;
        foreach (var f in Directory.GetFiles(StateDir, "*.json"))
        {
            var key = Path.GetFileNameWithoutExtension(f);
            if (IsSafeName(key) && GetManifest(key) is { } m)
            {
                used += m.TotalBytes;
            }
        }
        foreach (var d in Directory.GetDirectories(StagingDir))
        {
            used += FolderBytes(d);
        }
        return used;
    }

    public IEnumerable<ModelManifest> Manifests()
    {
        foreach (var f in Directory.GetFiles(StateDir, "*.json"))
        {
            var key = Path.GetFileNameWithoutExtension(f);
            if (IsSafeName(key) && GetManifest(key) is { } m)
            {
                yield return m;
            }
        }
    }

    public long AvailableFreeSpace() => _io.AvailableFreeSpace(Root);

    internal static long FolderBytes(string folder)
    {
        long total = 0;
        foreach (var f in new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            total += f.Length;
        }
        return total;
    }

    private static bool IsSafeName(string key) => key.Length > 0 && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    private static string CheckKey(string key) => IsSafeName(key)
        ? key
        : throw new ArgumentException($"invalid storage key '{key}'", nameof(key));
}
