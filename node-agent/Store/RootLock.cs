using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace KServe.Node.Agent.Store;

/// <summary>A cache root already held by another agent (one agent per root).</summary>
internal sealed class RootLockedException : KServe.Node.Hosting.Cli.StartupException
{
    public RootLockedException() : this("the cache root is locked") { }

    public RootLockedException(string message) : base(message) { }

    public RootLockedException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// <c>flock(LOCK_EX | LOCK_NB)</c> on <c>{root}/.lock</c>, held for the agent's lifetime: two agents on one
/// root would each collect the other's downloads. The kernel drops the lock when the process dies, so a
/// SIGKILL never leaves a stale lock behind. The file carries the holder's pid, for whoever looks.
/// </summary>
internal sealed partial class RootLock : IDisposable
{
    private const int LockEx = 2;
    private const int LockNb = 4;
    private readonly SafeFileHandle _handle;

    private RootLock(SafeFileHandle handle) => _handle = handle;

    public static RootLock Acquire(string root)
    {
        Directory.CreateDirectory(root);
        var path = Path.Combine(root, ".lock");
        SafeFileHandle? handle = null;
        try
        {
            // .NET itself takes a shared flock for FileShare emulation, so a held lock can already fail the open.
            handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (IOException)
        {
        }
        if (handle is null || Flock((int)handle.DangerousGetHandle(), LockEx | LockNb) != 0)
        {
            handle?.Dispose();
            throw new RootLockedException($"another node-agent already uses the cache root {root} ({path} is locked; it holds that agent's pid); one agent per root");
        }
        var pid = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        RandomAccess.SetLength(handle, 0);
        RandomAccess.Write(handle, pid, 0);
        return new RootLock(handle);
    }

    public void Dispose() => _handle.Dispose();

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);
}
