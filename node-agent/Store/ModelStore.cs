using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using KServe.Node.Agent.Sources;

namespace KServe.Node.Agent.Store;

/// <summary>
/// The node's model cache on disk (the house layout):
/// <c>{root}/models/{storageKey}/</c> the complete model, exactly as in the source;
/// <c>{root}/.staging/{storageKey}.{id}/</c> downloads in progress (outside <c>models/</c>, so that
/// garbage collection of unlisted folders never races a download);
/// <c>{root}/.state/{storageKey}.json</c> the manifest, written after the atomic rename: the completion marker;
/// <c>{root}/.replaced/{storageKey}.{unixSeconds}/</c> a folder swapped out of <c>models/</c>, kept for the
/// grace period because pods started before the swap still read it through their mount.
/// Only names that are storage keys are ever deleted: anything else under the root belongs to someone else.
/// </summary>
internal sealed class ModelStore : IDisposable
{
    private readonly IStoreIo _io;
    private readonly RootLock? _lock;

    public ModelStore(string root, IStoreIo? io = null, RootLock? rootLock = null)
    {
        Root = Path.GetFullPath(root);
        _io = io ?? PhysicalStoreIo.Instance;
        _lock = rootLock;
        Directory.CreateDirectory(ModelsDir);
        Directory.CreateDirectory(StagingDir);
        Directory.CreateDirectory(StateDir);
    }

    public string Root { get; }
    public string ModelsDir => Path.Combine(Root, "models");
    public string StagingDir => Path.Combine(Root, ".staging");
    public string StateDir => Path.Combine(Root, ".state");
    public string ReplacedDir => Path.Combine(Root, ".replaced");
    public IStoreIo Io => _io;
    private string AbsentPath => Path.Combine(StateDir, "absent.json");

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

    /// <summary>
    /// Publishes a verified staging folder: the pending manifest is made durable, then the folder goes into
    /// <c>models/</c> with one rename, or, when a folder is already there, with one
    /// <c>renameat2(RENAME_EXCHANGE)</c> (never a moment where <c>models/{key}</c> is missing or mixed); then
    /// the manifest is renamed into place (the completion marker). A swapped-out folder is moved to
    /// <c>.replaced/</c> and deleted after the grace period.
    /// </summary>
    public void Commit(StagingArea staging, ModelManifest manifest, DateTimeOffset now)
    {
        var key = CheckKey(manifest.StorageKey);
        var target = ModelPath(key);
        // From here the staged files are the model, not a resumable download.
        staging.DropPlan();
        _io.WriteFileAtomic(PendingManifestPath(key), JsonSerializer.SerializeToUtf8Bytes(manifest, StoreJsonContext.Default.ModelManifest));
        var exchanged = Directory.Exists(target);
        if (exchanged)
        {
            _io.ExchangeDirectories(staging.FilesDir, target);
        }
        else
        {
            _io.MoveDirectory(staging.FilesDir, target);
        }
        _io.FlushDirectory(ModelsDir);
        File.Move(PendingManifestPath(key), ManifestPath(key), overwrite: true);
        _io.FlushDirectory(StateDir);
        if (exchanged)
        {
            Directory.CreateDirectory(ReplacedDir);
            var aside = Path.Combine(ReplacedDir, $"{key}.{now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}");
            _io.DeleteDirectory(aside);
            _io.MoveDirectory(staging.FilesDir, aside);
        }
        staging.Delete();
    }

    /// <summary>Writes (or rewrites) the manifest of a folder already in <c>models/</c> (adoption, new cache names).</summary>
    public void WriteManifest(ModelManifest manifest) =>
        _io.WriteFileAtomic(ManifestPath(CheckKey(manifest.StorageKey)), JsonSerializer.SerializeToUtf8Bytes(manifest, StoreJsonContext.Default.ModelManifest));

    /// <summary>True when <c>models/{key}</c> exists without a manifest (KServe's agent wrote it, or <c>.state</c> was lost).</summary>
    public bool HasUnmanifestedFolder(string storageKey) => Directory.Exists(ModelPath(storageKey)) && GetManifest(storageKey) is null;

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

    /// <summary>Every storage key with something on disk: a model folder, a manifest or a staging folder.</summary>
    public HashSet<string> KeysOnDisk()
    {
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
        keys.RemoveWhere(k => !Api.StorageKey.IsValid(k));
        return keys;
    }

    /// <summary>
    /// Deletes folders in <c>.replaced/</c> older than <paramref name="grace"/>; returns the bytes freed and when
    /// the next one is due (null when none is left).
    /// </summary>
    public (long Freed, DateTimeOffset? NextDue) CollectReplaced(DateTimeOffset now, TimeSpan grace)
    {
        if (!Directory.Exists(ReplacedDir))
        {
            return (0, null);
        }
        long freed = 0;
        DateTimeOffset? next = null;
        foreach (var d in Directory.GetDirectories(ReplacedDir))
        {
            var parts = Path.GetFileName(d).Split('.');
            if (parts.Length != 2 || !Api.StorageKey.IsValid(parts[0])
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var unix))
            {
                continue;
            }
            var due = DateTimeOffset.FromUnixTimeSeconds(unix) + grace;
            if (due <= now)
            {
                freed += FolderBytes(d);
                _io.DeleteDirectory(d);
            }
            else if (next is null || due < next)
            {
                next = due;
            }
        }
        return (freed, next);
    }

    /// <summary>Since when each key has been absent from the desired state (survives restarts).</summary>
    public Dictionary<string, DateTimeOffset> LoadAbsent()
    {
        try
        {
            var absent = File.Exists(AbsentPath) ? JsonSerializer.Deserialize(File.ReadAllBytes(AbsentPath), StoreJsonContext.Default.AbsentKeys) : null;
            return new Dictionary<string, DateTimeOffset>(absent?.Since ?? [], StringComparer.Ordinal);
        }
        catch (JsonException)
        {
            return new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        }
    }

    public void SaveAbsent(Dictionary<string, DateTimeOffset> since) =>
        _io.WriteFileAtomic(AbsentPath, JsonSerializer.SerializeToUtf8Bytes(new AbsentKeys { Since = since }, StoreJsonContext.Default.AbsentKeys));

    /// <summary>Bytes used by complete models (manifest totals) and by staging.</summary>
    public long UsedBytes()
    {
        long used = 0;
        foreach (var f in Directory.GetFiles(StateDir, "*.json"))
        {
            var key = Path.GetFileNameWithoutExtension(f);
            if (Api.StorageKey.IsValid(key) && GetManifest(key) is { } m)
            {
                used += m.TotalBytes;
            }
        }
        foreach (var d in Directory.GetDirectories(StagingDir))
        {
            used += FolderBytes(d);
        }
        if (Directory.Exists(ReplacedDir))
        {
            used += FolderBytes(ReplacedDir);
        }
        return used;
    }

    public IEnumerable<ModelManifest> Manifests()
    {
        foreach (var f in Directory.GetFiles(StateDir, "*.json"))
        {
            var key = Path.GetFileNameWithoutExtension(f);
            if (Api.StorageKey.IsValid(key) && GetManifest(key) is { } m)
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

    public void Dispose() => _lock?.Dispose();

    private static string CheckKey(string key) => Api.StorageKey.IsValid(key)
        ? key
        : throw new ArgumentException($"invalid storage key '{key}'", nameof(key));
}
