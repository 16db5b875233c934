using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace KServe.Node.Agent.Store;

/// <summary>
/// The file-system operations the store and downloader write through, kept small so that tests can put
/// a fault between the agent and the disk where a real fault cannot be produced.
/// </summary>
internal interface IStoreIo
{
    /// <summary>Creates (with space reserved up front) or reopens a data file for writing at offsets.</summary>
    SafeFileHandle OpenData(string path, long preallocate, bool create);

    ValueTask WriteAsync(SafeFileHandle file, ReadOnlyMemory<byte> data, long offset, CancellationToken ct);

    /// <summary>fsync(2) of a file.</summary>
    void Flush(SafeFileHandle file);

    /// <summary>fsync(2) of a directory, so that a rename or a new entry in it survives a crash.</summary>
    void FlushDirectory(string path);

    /// <summary>rename(2) of a directory (atomic within one file system).</summary>
    void MoveDirectory(string from, string to);

    /// <summary>renameat2(2) with RENAME_EXCHANGE: swaps two directories in one atomic step.</summary>
    void ExchangeDirectories(string a, string b);

    /// <summary>link(2): a second name for an existing file (same file system), or a copy where links are refused.</summary>
    void LinkOrCopy(string existing, string newPath);

    /// <summary>Writes a small file durably: temp file, fsync, rename over the target, fsync of the folder.</summary>
    void WriteFileAtomic(string path, ReadOnlySpan<byte> content);

    void DeleteDirectory(string path);

    long AvailableFreeSpace(string path);
}

/// <summary>The real disk.</summary>
internal sealed partial class PhysicalStoreIo : IStoreIo
{
    public static PhysicalStoreIo Instance { get; } = new();

    public SafeFileHandle OpenData(string path, long preallocate, bool create)
    {
        try
        {
            if (!create)
            {
                return File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
            }
            // The preallocation reserves the blocks (ENOSPC now rather than mid-download) but keeps the
            // length at 0; the length is set too, so that a resumed download recognises the file.
            var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, FileOptions.None, preallocate);
            try
            {
                RandomAccess.SetLength(handle, preallocate);
                return handle;
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }
        catch (IOException e) when (DiskErrors.IsDiskFull(e))
        {
            throw DiskErrors.Full(path, e);
        }
    }

    public async ValueTask WriteAsync(SafeFileHandle file, ReadOnlyMemory<byte> data, long offset, CancellationToken ct)
    {
        try
        {
            await RandomAccess.WriteAsync(file, data, offset, ct).ConfigureAwait(false);
        }
        catch (IOException e) when (DiskErrors.IsDiskFull(e))
        {
            throw DiskErrors.Full(null, e);
        }
    }

    public void Flush(SafeFileHandle file) => RandomAccess.FlushToDisk(file);

    public void FlushDirectory(string path)
    {
        // O_RDONLY alone: fsync works on a read-only descriptor of a folder, and O_DIRECTORY's value differs between
        // x86-64 (0x10000) and arm64 (0x4000, where 0x10000 is O_DIRECT and open fails with EINVAL).
        var fd = Open(path, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"cannot open folder {path} for fsync (errno {Marshal.GetLastPInvokeError()})");
        }
        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of folder {path} failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    public void MoveDirectory(string from, string to) => Directory.Move(from, to);

    public void ExchangeDirectories(string a, string b)
    {
        if (Renameat2(AtFdCwd, a, AtFdCwd, b, RenameExchange) != 0)
        {
            throw new IOException($"renameat2(RENAME_EXCHANGE) of {a} and {b} failed (errno {Marshal.GetLastPInvokeError()})");
        }
    }

    public void LinkOrCopy(string existing, string newPath)
    {
        if (Link(existing, newPath) != 0)
        {
            // EXDEV, EPERM (some file systems refuse hard links): a copy is still correct, only slower.
            File.Copy(existing, newPath, overwrite: false);
        }
    }

    public void WriteFileAtomic(string path, ReadOnlySpan<byte> content)
    {
        var tmp = path + ".tmp";
        try
        {
            using (var h = File.OpenHandle(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                RandomAccess.Write(h, content, 0);
                RandomAccess.FlushToDisk(h);
            }
            File.Move(tmp, path, overwrite: true);
            FlushDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        }
        catch (IOException e) when (DiskErrors.IsDiskFull(e))
        {
            throw DiskErrors.Full(path, e);
        }
    }

    public void DeleteDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }

    public long AvailableFreeSpace(string path) => new DriveInfo(Path.GetFullPath(path)).AvailableFreeSpace;

    private const int AtFdCwd = -100;
    private const uint RenameExchange = 2;

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string oldpath, string newpath);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}

internal static class DiskErrors
{
    private const int Enospc = 28;
    private const int Edquot = 122;

    // On Linux the HResult carries the errno; 39 and 112 would be ENOTEMPTY and EHOSTDOWN there (Windows' disk-full codes).
    public static bool IsDiskFull(IOException e) =>
        (e.HResult & 0xFFFF) is Enospc or Edquot
        || e.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("not enough space", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("Disk quota", StringComparison.OrdinalIgnoreCase);

    public static Sources.DownloadException Full(string? path, IOException e) =>
        new(Sources.FailureReason.DiskFull, path is null ? "disk full: no space left on device while writing the model" : $"disk full: no space left on device writing {Path.GetFileName(path)}", e);
}
