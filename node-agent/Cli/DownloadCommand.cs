using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Store;
using KServe.Node.Hosting.Cli;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Agent.Cli;

/// <summary>
/// <c>download URI DEST</c>: the one-shot fetch used as the init container of an InferenceService
/// without a cache. Staging lives in <c>DEST/.kserve-node-staging/</c> (same file system, so the final
/// moves are renames, and a restarted container resumes); on success the files are moved into DEST and
/// the staging folder removed. Exit 0 on success; otherwise one line on stderr and a non-zero code.
/// </summary>
internal static class DownloadCommand
{
    public const string StagingFolder = ".kserve-node-staging";

    public static async Task<int> RunAsync(CliResult cl, TextWriter stderr, CancellationToken ct)
    {
        var (uri, dest) = (cl.Positional[0], Path.GetFullPath(cl.Positional[1]));
        var options = new ConfigurationBuilder().AddCommandLine(cl).Build().GetSection(DownloadOptions.Section).Get<DownloadOptions>() ?? new DownloadOptions();
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
            Directory.CreateDirectory(dest);
            var key = Api.StorageKey.Compute(uri);
            var stagingRoot = Path.Combine(dest, StagingFolder);
            Directory.CreateDirectory(stagingRoot);
            foreach (var other in Directory.GetDirectories(stagingRoot).Where(d => Path.GetFileName(d) != key))
            {
                io.DeleteDirectory(other);
            }
            var staging = new StagingArea(Path.Combine(stagingRoot, key), io);
            Directory.CreateDirectory(staging.Dir);
            var progress = new ProgressCounter();
            var files = await fetcher.FetchAsync(new FetchRequest(uri, key, new FileFilter(allow, ignore), settings), staging, io,
                () => io.AvailableFreeSpace(dest), progress, ct).ConfigureAwait(false);
            foreach (var entry in Directory.EnumerateFileSystemEntries(staging.FilesDir))
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
            io.FlushDirectory(dest);
            io.DeleteDirectory(stagingRoot);
            await Console.Out.WriteLineAsync($"downloaded {files.Count} files, {ModelFetcher.Bytes(files.Sum(f => f.Size))} into {dest}").ConfigureAwait(false);
            return 0;
        }
        catch (DownloadException e)
        {
            await stderr.WriteLineAsync($"download failed: {e.Reason}: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (IOException e)
        {
            await stderr.WriteLineAsync($"download failed: {FailureReason.IoError}: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (UnauthorizedAccessException e)
        {
            await stderr.WriteLineAsync($"download failed: {FailureReason.IoError}: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }
}
