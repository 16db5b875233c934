using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Store;
using KServe.Node.Hosting.Cli;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Agent.Cli;

/// <summary>
/// <c>download URI DEST</c>: the one-shot fetch used as the init container of an InferenceService
/// without a cache. DEST is published in one step, so a container killed half-way leaves nothing a server
/// would load: the download is staged beside DEST in <c>.{name}.kserve-node-staging/</c> (same file system;
/// a restarted container resumes from its journal) and renamed into place, or swapped with an existing DEST
/// by <c>renameat2(RENAME_EXCHANGE)</c>. A DEST that is itself a mount point (an emptyDir) cannot be renamed:
/// then the staging lives in <c>DEST/.kserve-node-staging/</c> and its verified files are moved in.
/// Exit 0 on success; otherwise one line on stderr and a non-zero code.
/// </summary>
internal static class DownloadCommand
{
    public const string StagingFolder = ".kserve-node-staging";

    public static async Task<int> RunAsync(CliResult cl, TextWriter stderr, CancellationToken ct)
    {
        var (uri, dest) = (cl.Positional[0], Path.GetFullPath(cl.Positional[1]));
        var options = new ConfigurationBuilder().AddCommandLine(cl).Build().GetSection(DownloadOptions.Section).Get<DownloadOptions>() ?? new DownloadOptions();
        // The verb runs in the InferenceService's own pod: the SDK's default credentials are that pod's identity
        // (its IRSA role, its mounted profile), as KServe's storage initializer uses them.
        options.AwsDefaultCredentials = true;
        var settings = SourceSettings.FromEnvironment();
        var allow = cl.Get("allow") ?? settings.Get("STORAGE_ALLOW_PATTERNS");
        var ignore = cl.Get("ignore") ?? settings.Get("STORAGE_IGNORE_PATTERNS");

        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; })
            .SetMinimumLevel(cl.Switch("verbose") ? LogLevel.Debug : LogLevel.Warning));
        using var http = SourceFactory.CreateHttpClient();
        var fetcher = new ModelFetcher(options, http, TimeProvider.System, loggerFactory.CreateLogger<ModelFetcher>());
        var io = PhysicalStoreIo.Instance;
        try
        {
            var key = Api.StorageKey.Compute(uri);
            var mountPoint = IsMountPoint(dest);
            var stagingRoot = mountPoint ? Path.Combine(dest, StagingFolder)
                : Path.Combine(Path.GetDirectoryName(dest)!, "." + Path.GetFileName(dest) + StagingFolder);
            Directory.CreateDirectory(stagingRoot);
            foreach (var other in Directory.GetDirectories(stagingRoot).Where(d => Path.GetFileName(d) != key))
            {
                io.DeleteDirectory(other);
            }
            var staging = new StagingArea(Path.Combine(stagingRoot, key), io);
            Directory.CreateDirectory(staging.Dir);
            var progress = new ProgressCounter();
            var files = await fetcher.FetchAsync(new FetchRequest(uri, key, new FileFilter(allow, ignore), settings), staging, io,
                () => io.AvailableFreeSpace(stagingRoot), progress, ct).ConfigureAwait(false);
            staging.DropPlan();
            if (mountPoint)
            {
                MoveEntries(staging.FilesDir, dest);
                io.FlushDirectory(dest);
            }
            else if (Directory.Exists(dest))
            {
                io.ExchangeDirectories(staging.FilesDir, dest);
                io.FlushDirectory(Path.GetDirectoryName(dest)!);
            }
            else
            {
                io.MoveDirectory(staging.FilesDir, dest);
                io.FlushDirectory(Path.GetDirectoryName(dest)!);
            }
            io.DeleteDirectory(stagingRoot);
            await Console.Out.WriteLineAsync($"downloaded {files.Count} files, {ModelFetcher.Bytes(files.Sum(f => f.Size))} into {dest}").ConfigureAwait(false);
            return 0;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // The contract is one line, never a stack trace; the staging stays for a resume.
            var (reason, message) = e is DownloadException d ? (d.Reason, d.Message) : (FailureReason.IoError, e.Message);
            await stderr.WriteLineAsync($"download failed: {reason}: {message}").ConfigureAwait(false);
            return 1;
        }
    }

    /// <summary>Whether a folder is a mount point (it cannot be renamed, and its parent is another file system).</summary>
    private static bool IsMountPoint(string path)
    {
        const string MountInfo = "/proc/self/mountinfo";
        if (!File.Exists(MountInfo))
        {
            return false;
        }
        var full = Path.GetFullPath(path).TrimEnd('/');
        // Field 5 is the mount point, with spaces written as \040.
        return File.ReadLines(MountInfo).Select(l => l.Split(' ')).Any(f => f.Length > 4 && f[4].Replace("\\040", " ", StringComparison.Ordinal) == full);
    }

    private static void MoveEntries(string from, string dest)
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(from))
        {
            var target = Path.Combine(dest, Path.GetFileName(entry));
            if (Directory.Exists(target))
            {
                Directory.Delete(target, true);
            }
            if (Directory.Exists(entry))
            {
                Directory.Move(entry, target);
            }
            else
            {
                File.Move(entry, target, overwrite: true);
            }
        }
    }
}
