using System.Buffers.Binary;
using System.Text.Json;

namespace KServe.Node.Agent.Store;

/// <summary>
/// A staging folder: <c>files/</c> (the model as it will appear), <c>plan.json</c> (what is being
/// fetched, with the chunk size) and <c>journal/{n}</c> (indices of the chunks of file n that are written).
/// A chunk is journalled only after its bytes were written and flushed to disk (so that after a power loss
/// the journal never runs ahead of the data), so a killed agent resumes from the journal and re-fetches at
/// most the chunks that were in flight; the checksum pass still reads every byte.
/// </summary>
internal sealed class StagingArea
{
    private readonly IStoreIo _io;
    private readonly Lock _journalLock = new();

    public StagingArea(string dir, IStoreIo io)
    {
        Dir = dir;
        _io = io;
    }

    public string Dir { get; }
    public string FilesDir => Path.Combine(Dir, "files");
    private string JournalDir => Path.Combine(Dir, "journal");
    private string PlanPath => Path.Combine(Dir, "plan.json");

    public StagingPlan? LoadPlan()
    {
        try
        {
            return File.Exists(PlanPath) ? JsonSerializer.Deserialize(File.ReadAllBytes(PlanPath), StoreJsonContext.Default.StagingPlan) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Starts over with a new plan: previous partial files and journals are dropped.</summary>
    public void Reset(StagingPlan plan)
    {
        if (Directory.Exists(FilesDir))
        {
            Directory.Delete(FilesDir, true);
        }
        if (Directory.Exists(JournalDir))
        {
            Directory.Delete(JournalDir, true);
        }
        Directory.CreateDirectory(FilesDir);
        Directory.CreateDirectory(JournalDir);
        _io.WriteFileAtomic(PlanPath, JsonSerializer.SerializeToUtf8Bytes(plan, StoreJsonContext.Default.StagingPlan));
    }

    public HashSet<int> LoadDone(int fileIndex)
    {
        var done = new HashSet<int>();
        var path = Path.Combine(JournalDir, fileIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (!File.Exists(path))
        {
            return done;
        }
        var bytes = File.ReadAllBytes(path);
        // A torn last record (killed mid-append) is ignored.
        for (var i = 0; i + 4 <= bytes.Length; i += 4)
        {
            done.Add(BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(i)));
        }
        return done;
    }

    public void MarkDone(int fileIndex, int chunk)
    {
        Span<byte> record = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(record, chunk);
        var path = Path.Combine(JournalDir, fileIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
        lock (_journalLock)
        {
            using var fs = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
            fs.Write(record);
        }
    }

    public void ClearJournal(int fileIndex)
    {
        var path = Path.Combine(JournalDir, fileIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
        lock (_journalLock)
        {
            File.Delete(path);
        }
    }

    /// <summary>Removes the plan: the folder is no longer resumed from (its files are being published).</summary>
    public void DropPlan()
    {
        File.Delete(PlanPath);
        _io.FlushDirectory(Dir);
    }

    public void Delete() => _io.DeleteDirectory(Dir);
}
