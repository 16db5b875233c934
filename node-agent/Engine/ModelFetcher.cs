using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace KServe.Node.Agent.Engine;

/// <summary>What to fetch.</summary>
/// <param name="Uri">The source URI.</param>
/// <param name="StorageKey">The cache key of the URI.</param>
/// <param name="Filter">allow/ignore patterns.</param>
/// <param name="Settings">Credentials and endpoints.</param>
/// <param name="MaxBytes">The most this model may occupy (storage limit minus what other models use), or null.</param>
/// <param name="Reuse">A folder whose files may be linked into the staging instead of fetched again, when they match.</param>
internal sealed record FetchRequest(string Uri, string StorageKey, FileFilter Filter, SourceSettings Settings, long? MaxBytes = null, ReuseFrom? Reuse = null);

/// <summary>
/// Files already on disk that a download may keep: the current folder of a model being updated or replaced.
/// <paramref name="Known"/> is its manifest's files (verified when written); without it each file is hashed
/// against the checksums the source offers.
/// </summary>
internal sealed record ReuseFrom(string Folder, IReadOnlyDictionary<string, ManifestFile>? Known);

/// <summary>
/// Fetches one model into a staging folder: list → filter → check paths, limits and free space → plan
/// (resume if the plan matches what is on disk) → parallel ranged GETs with retries → in-order checksum
/// → fsync. The caller publishes the verified staging folder.
/// </summary>
internal sealed partial class ModelFetcher(DownloadOptions options, HttpClient http, TimeProvider time, ILogger<ModelFetcher> logger)
{
    /// <summary>The source's files that pass the filter, in path order, checked for path conflicts.</summary>
    public async Task<List<RemoteFile>> ListAsync(FetchRequest request, CancellationToken ct)
    {
        using var source = SourceFactory.Create(request.Uri, request.Settings, http, options.AwsDefaultCredentials);
        return await ListAsync(source, request, ct).ConfigureAwait(false);
    }

    private async Task<List<RemoteFile>> ListAsync(IModelSource source, FetchRequest request, CancellationToken ct)
    {
        var listed = await RetryAsync(() => source.ListAsync(ct), "list", ct).ConfigureAwait(false);
        var files = listed.Where(f => request.Filter.Includes(f.Path)).OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        if (files.Count == 0)
        {
            throw new DownloadException(FailureReason.NoFiles, listed.Count == 0
                ? $"{SafeUri(request.Uri)} has no files"
                : $"{SafeUri(request.Uri)}: none of its {listed.Count} files match {request.Filter}");
        }
        CheckPathConflicts(files);
        return files;
    }

    /// <summary>
    /// Checks a folder against the source's (filtered) listing: the same names, nothing else, the same sizes and
    /// every checksum the source offers. Returns the manifest files when it matches, else null and why not.
    /// </summary>
    public (List<ManifestFile>? Files, string? Mismatch) Match(string folder, IReadOnlyList<RemoteFile> files)
    {
        var onDisk = Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => System.IO.Path.GetRelativePath(folder, f).Replace('\\', '/')).ToHashSet(StringComparer.Ordinal);
        var result = new List<ManifestFile>(files.Count);
        foreach (var f in files)
        {
            if (!onDisk.Remove(f.Path))
            {
                return (null, $"{f.Path} is missing");
            }
            if (Reusable(f, new ReuseFrom(folder, null)) is not { } m)
            {
                return (null, $"{f.Path} differs from the source");
            }
            result.Add(m);
        }
        return onDisk.Count > 0 ? (null, $"{onDisk.Order(StringComparer.Ordinal).First()} is not in the source") : (result, null);
    }

    /// <summary>
    /// The manifest entry of a file in <paramref name="reuse"/> that equals the source's file: same size, and the
    /// same content where the source offers a checksum (from the known manifest, or hashed here); null otherwise.
    /// </summary>
    private ManifestFile? Reusable(RemoteFile f, ReuseFrom reuse)
    {
        if (f.Size is not { } size)
        {
            return null;
        }
        string path;
        try
        {
            path = PathGuard.Combine(reuse.Folder, f.Path);
        }
        catch (DownloadException)
        {
            return null;
        }
        var info = new FileInfo(path);
        if (!info.Exists || info.Length != size)
        {
            return null;
        }
        var checksum = options.Verify ? Checksum.Of(f) : null;
        if (reuse.Known?.GetValueOrDefault(f.Path) is { } k && k.Size == size
            && (f.Sha256 is null || string.Equals(k.Sha256, f.Sha256, StringComparison.OrdinalIgnoreCase))
            && (f.Md5 is null || string.Equals(k.Md5, f.Md5, StringComparison.OrdinalIgnoreCase))
            && (f.GitSha1 is null || string.Equals(k.GitSha1, f.GitSha1, StringComparison.OrdinalIgnoreCase)))
        {
            return new ManifestFile
            {
                Path = f.Path, Size = size, Md5 = f.Md5 ?? k.Md5, Sha256 = f.Sha256 ?? k.Sha256, GitSha1 = f.GitSha1 ?? k.GitSha1,
                Verified = checksum is not null ? Verification.Checksum : k.Verified,
            };
        }
        if (checksum is null)
        {
            return new ManifestFile { Path = f.Path, Size = size, Verified = Verification.SizeOnly };
        }
        if (!string.Equals(LocalHash(path, checksum), checksum.Expected, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        return new ManifestFile { Path = f.Path, Size = size, Md5 = f.Md5, Sha256 = f.Sha256, GitSha1 = f.GitSha1, Verified = Verification.Checksum };
    }

    /// <summary>A file on disk hashed as <paramref name="checksum"/> defines it (the same code that checks downloads).</summary>
    private static string LocalHash(string path, Checksum checksum)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var size = RandomAccess.GetLength(handle);
        var hasher = new OrderedHasher(handle, size == 0 ? 0 : 1, Math.Max(size, 1), size, checksum);
        if (size > 0)
        {
            hasher.Complete(0);
        }
        hasher.RunAsync(CancellationToken.None).GetAwaiter().GetResult();
        return hasher.Result;
    }

    /// <summary>The hash a plan stores to compare URIs without storing them (a URI may carry a pre-signed query).</summary>
    internal static string UriHash(string uri) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(uri)));

    public async Task<List<ManifestFile>> FetchAsync(FetchRequest request, StagingArea staging, IStoreIo io, Func<long> freeSpace,
        ProgressCounter progress, CancellationToken ct, IReadOnlyList<RemoteFile>? listed = null)
    {
        using var source = SourceFactory.Create(request.Uri, request.Settings, http, options.AwsDefaultCredentials);
        var files = listed is null ? await ListAsync(source, request, ct).ConfigureAwait(false) : [.. listed];

        var total = files.All(f => f.Size is not null) ? files.Sum(f => f.Size!.Value) : (long?)null;
        var sized = files.Sum(f => f.Size ?? 0);
        var plan = new StagingPlan
        {
            SourceUri = SafeUri(request.Uri),
            SourceHash = UriHash(request.Uri),
            ChunkSize = options.ChunkSizeBytes,
            Files = files.Select(f => new PlannedFile(f.Path, f.Size, f.Md5, f.Sha256, f.Version, f.SupportsRanges)).ToList(),
        };
        var existing = staging.LoadPlan();
        var resume = existing is not null && existing.SourceHash == plan.SourceHash && existing.Files.SequenceEqual(plan.Files);
        var staged = resume ? ModelStore.FolderBytes(staging.Dir) : 0;
        // Files the current folder already holds are linked, not fetched: they need no new space.
        var reusable = new Dictionary<int, ManifestFile>();
        for (var i = 0; request.Reuse is { } r && i < files.Count; i++)
        {
            if (Reusable(files[i], r) is { } keep)
            {
                reusable[i] = keep;
            }
        }
        var kept = reusable.Values.Sum(f => f.Size);
        // Files of unknown size are held to what is left while they stream (StreamBudget); the sized ones are checked now.
        var unknown = total is null ? " and files of unknown size" : "";
        if (request.MaxBytes is { } max && sized > max)
        {
            throw new DownloadException(FailureReason.StorageLimitExceeded,
                $"model needs {Bytes(sized)}{unknown} but the storage limit leaves {Bytes(Math.Max(0, max))} for it");
        }
        var free = freeSpace();
        var need = Math.Max(0, sized - staged - kept);
        if (need + options.ReserveBytes > free)
        {
            throw new DownloadException(FailureReason.InsufficientStorage, request.Reuse is null
                ? $"not enough free disk: model needs {Bytes(need)}{unknown} more (plus {Bytes(options.ReserveBytes)} reserve), {Bytes(free)} free"
                : $"not enough free disk for a second copy while the current one is in use: the new files need {Bytes(need)}{unknown} (plus {Bytes(options.ReserveBytes)} reserve), {Bytes(free)} free; the current copy stays");
        }
        var budget = new StreamBudget(request.MaxBytes - sized, freeSpace, options.ReserveBytes);
        if (resume)
        {
            plan = existing!;
            LogResume(logger, request.StorageKey, staged);
        }
        else
        {
            staging.Reset(plan);
        }
        progress.SetTotal(total);
        progress.Reset();
        return await DownloadFilesAsync(source, files, plan.ChunkSize, staging, io, progress, request.Reuse, reusable, budget, ct).ConfigureAwait(false);
    }

    private static void CheckPathConflicts(List<RemoteFile> files)
    {
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            if (!paths.Add(f.Path))
            {
                throw new DownloadException(FailureReason.UnsafePath, $"the source lists '{f.Path}' twice");
            }
        }
        foreach (var f in files)
        {
            for (var i = f.Path.IndexOf('/', StringComparison.Ordinal); i > 0; i = f.Path.IndexOf('/', i + 1))
            {
                if (paths.Contains(f.Path[..i]))
                {
                    throw new DownloadException(FailureReason.UnsafePath, $"'{f.Path[..i]}' is both a file and a folder in the source");
                }
            }
        }
    }

    /// <summary>One ranged GET of a file (<paramref name="End"/> null: the whole body of a file of unknown size), or
    /// chunk -1: a file with nothing left to fetch that must still be checked.</summary>
    private sealed record WorkItem(FileJob Job, int Chunk, long Start, long? End);

    /// <summary>
    /// One file of a download. Its handle and hasher exist only while it is being fetched (opened by its first work
    /// item, closed once it is checked), and at most <see cref="MaxOpenFiles"/> files are open at once, so memory and
    /// descriptors do not grow with the file count.
    /// </summary>
    private sealed class FileJob(int index, RemoteFile file, string path) : IDisposable
    {
        private readonly Lock _lock = new();
        private Task? _open;
        private int _pending;

        public int Index { get; } = index;
        public RemoteFile File { get; } = file;
        public string Path { get; } = path;
        /// <summary>Chunks the journal says are on disk already.</summary>
        public HashSet<int> Done { get; init; } = [];
        public int Chunks { get; init; }
        public long ChunkSize { get; init; }
        public bool Create { get; init; }
        public Checksum? Checksum { get; init; }
        public SafeFileHandle? Handle { get; set; }
        public OrderedHasher? Hasher { get; set; }
        public Task Hashing { get; set; } = Task.CompletedTask;

        public void AddWork() => _pending++;

        /// <summary>Counts one work item as done; true for the last.</summary>
        public bool WorkDone() => Interlocked.Decrement(ref _pending) == 0;

        public Task OpenOnce(Func<FileJob, Task> open)
        {
            lock (_lock)
            {
                return _open ??= open(this);
            }
        }

        public void Dispose()
        {
            Handle?.Dispose();
            Handle = null;
        }
    }

    /// <summary>
    /// What a file of unknown size may still take while it streams: the storage limit less the sized files, and
    /// the free space the node keeps in reserve.
    /// </summary>
    private sealed class StreamBudget(long? limit, Func<long> freeSpace, long reserve)
    {
        private const long FreeCheckEvery = 16L << 20;
        private long _written;
        private long _nextFreeCheck = FreeCheckEvery;

        public void Add(string path, long bytes)
        {
            var written = Interlocked.Add(ref _written, bytes);
            if (limit is { } max && written > max)
            {
                throw new DownloadException(FailureReason.StorageLimitExceeded,
                    $"{path} has no length and has grown past what the storage limit leaves for it ({Bytes(Math.Max(0, max))})");
            }
            if (written >= Interlocked.Read(ref _nextFreeCheck))
            {
                Interlocked.Exchange(ref _nextFreeCheck, written + FreeCheckEvery);
                if (freeSpace() is var free && free < reserve)
                {
                    throw new DownloadException(FailureReason.InsufficientStorage,
                        $"{path} has no length and has filled the disk to {Bytes(free)} free, below the {Bytes(reserve)} reserve");
                }
            }
        }
    }

    private int MaxOpenFiles => Math.Max(2 * options.Streams, 16);

    private async Task<List<ManifestFile>> DownloadFilesAsync(IModelSource source, List<RemoteFile> files, long chunkSize,
        StagingArea staging, IStoreIo io, ProgressCounter progress, ReuseFrom? reuse, Dictionary<int, ManifestFile> reused,
        StreamBudget budget, CancellationToken ct)
    {
        var jobs = new List<FileJob>();
        var work = new List<WorkItem>();
        var results = new ManifestFile?[files.Count];
        using var slots = new SemaphoreSlim(MaxOpenFiles);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            for (var i = 0; i < files.Count; i++)
            {
                var f = files[i];
                var path = PathGuard.Combine(staging.FilesDir, f.Path);
                Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
                if (reuse is not null && reused.TryGetValue(i, out var keep))
                {
                    // Files never change in place, so the new folder may share the old one's inode.
                    File.Delete(path);
                    staging.ClearJournal(i);
                    io.LinkOrCopy(PathGuard.Combine(reuse.Folder, f.Path), path);
                    progress.Add(keep.Size);
                    results[i] = keep;
                    continue;
                }
                var checksum = options.Verify ? Checksum.Of(f) : null;
                if (f.Size is not { } size)
                {
                    var unsized = new FileJob(i, f, path) { Create = true, Checksum = checksum };
                    jobs.Add(unsized);
                    Add(work, new WorkItem(unsized, 0, 0, null));
                    continue;
                }
                var done = staging.LoadDone(i);
                var fits = File.Exists(path) && new FileInfo(path).Length == size;
                if (!fits)
                {
                    done.Clear();
                    staging.ClearJournal(i);
                }
                var effectiveChunk = f.SupportsRanges ? chunkSize : Math.Max(size, 1);
                var chunks = size == 0 ? 0 : (int)((size + effectiveChunk - 1) / effectiveChunk);
                var job = new FileJob(i, f, path) { Done = done, Chunks = chunks, ChunkSize = effectiveChunk, Create = !fits, Checksum = checksum };
                jobs.Add(job);
                for (var c = 0; c < chunks; c++)
                {
                    var start = c * effectiveChunk;
                    var end = Math.Min(size, start + effectiveChunk) - 1;
                    if (done.Contains(c))
                    {
                        progress.Add(end - start + 1);
                    }
                    else
                    {
                        Add(work, new WorkItem(job, c, start, end));
                    }
                }
                if (work.Count == 0 || work[^1].Job != job)
                {
                    Add(work, new WorkItem(job, -1, 0, 0));
                }
            }

            // Work is taken in list order, file after file, so every open file's remaining chunks are already in
            // the hands of a stream: a stream waiting for a free slot waits only for files that are finishing.
            await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = options.Streams, CancellationToken = cts.Token },
                async (item, token) =>
                {
                    var job = item.Job;
                    await job.OpenOnce(j => OpenAsync(j, slots, io, cts.Token)).WaitAsync(token).ConfigureAwait(false);
                    if (item.Chunk >= 0)
                    {
                        await RunChunkAsync(source, item, staging, io, progress, budget, token).ConfigureAwait(false);
                    }
                    if (job.WorkDone())
                    {
                        results[job.Index] = await FinishAsync(job, io, token).ConfigureAwait(false);
                        slots.Release();
                    }
                }).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await cts.CancelAsync().ConfigureAwait(false);
            foreach (var job in jobs)
            {
                try
                {
                    await job.Hashing.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
            if (e is DownloadException { Reason: FailureReason.ChecksumMismatch })
            {
                // Corrupt bytes must not be resumed from: drop the whole staging folder.
                staging.Delete();
            }
            throw;
        }
        finally
        {
            foreach (var job in jobs)
            {
                job.Dispose();
            }
        }

        foreach (var dir in Directory.GetDirectories(staging.FilesDir, "*", SearchOption.AllDirectories).Append(staging.FilesDir))
        {
            io.FlushDirectory(dir);
        }
        return [.. results.Select(r => r!).OrderBy(r => r.Path, StringComparer.Ordinal)];

        static void Add(List<WorkItem> work, WorkItem item)
        {
            item.Job.AddWork();
            work.Add(item);
        }
    }

    private static async Task OpenAsync(FileJob job, SemaphoreSlim slots, IStoreIo io, CancellationToken ct)
    {
        await slots.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            job.Handle = io.OpenData(job.Path, job.File.Size ?? 0, create: job.Create);
        }
        catch
        {
            slots.Release();
            throw;
        }
        if (job.Checksum is { } checksum && job.File.Size is { } size)
        {
            var hasher = new OrderedHasher(job.Handle, job.Chunks, job.ChunkSize, size, checksum);
            foreach (var c in job.Done)
            {
                hasher.Complete(c);
            }
            job.Hasher = hasher;
            job.Hashing = Task.Run(() => hasher.RunAsync(ct), ct);
        }
    }

    /// <summary>Checks a fetched file against the source's size and checksum, makes it durable and closes it.</summary>
    private static async Task<ManifestFile> FinishAsync(FileJob job, IStoreIo io, CancellationToken ct)
    {
        await job.Hashing.WaitAsync(ct).ConfigureAwait(false);
        var f = job.File;
        var handle = job.Handle!;
        var length = RandomAccess.GetLength(handle);
        if (f.Size is { } expected && length != expected)
        {
            throw new DownloadException(FailureReason.SizeMismatch, $"{f.Path}: {length} bytes on disk, the source said {expected}");
        }
        if (job.Checksum is { } checksum)
        {
            // A file of unknown size arrived as one stream: hash it now, from the page cache.
            var got = job.Hasher?.Result ?? LocalHash(job.Path, checksum);
            if (!string.Equals(got, checksum.Expected, StringComparison.OrdinalIgnoreCase))
            {
                throw new DownloadException(FailureReason.ChecksumMismatch,
                    $"checksum mismatch for {f.Path}: {checksum.Name} expected {checksum.Expected}, got {got}");
            }
        }
        io.Flush(handle);
        job.Dispose();
        return job.Checksum is null
            ? new ManifestFile { Path = f.Path, Size = length, Verified = Verification.SizeOnly }
            : new ManifestFile { Path = f.Path, Size = length, Md5 = f.Md5, Sha256 = f.Sha256, GitSha1 = f.GitSha1, Verified = Verification.Checksum };
    }

    private async Task RunChunkAsync(IModelSource source, WorkItem item, StagingArea staging, IStoreIo io, ProgressCounter progress,
        StreamBudget budget, CancellationToken ct)
    {
        var job = item.Job;
        var file = job.File;
        var handle = job.Handle!;
        var pos = item.Start;
        var attempts = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            while (true)
            {
                var before = pos;
                try
                {
                    using var readCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    readCts.CancelAfter(options.ReadTimeout);
                    using var stream = await source.OpenReadAsync(file, pos, item.End, readCts.Token).ConfigureAwait(false);
                    while (item.End is null || pos <= item.End)
                    {
                        var want = item.End is { } e ? (int)Math.Min(buffer.Length, e - pos + 1) : buffer.Length;
                        var filled = 0;
                        // Fill the buffer before writing: fewer, larger writes.
                        while (filled < want)
                        {
                            readCts.CancelAfter(options.ReadTimeout);
                            var n = await stream.ReadAsync(buffer.AsMemory(filled, want - filled), readCts.Token).ConfigureAwait(false);
                            if (n == 0)
                            {
                                break;
                            }
                            filled += n;
                        }
                        if (filled > 0)
                        {
                            if (item.End is null)
                            {
                                budget.Add(file.Path, filled);
                            }
                            await io.WriteAsync(handle, buffer.AsMemory(0, filled), pos, ct).ConfigureAwait(false);
                            pos += filled;
                            progress.Add(filled);
                            AgentMetrics.DownloadBytes.Inc(filled);
                        }
                        if (filled < want)
                        {
                            if (item.End is null)
                            {
                                RandomAccess.SetLength(handle, pos);
                                return;
                            }
                            throw new DownloadException(FailureReason.SourceUnavailable,
                                $"{file.Path}: connection closed after {pos - item.Start} of {item.End - item.Start + 1} bytes");
                        }
                    }
                    break;
                }
                catch (Exception e) when (!ct.IsCancellationRequested && IsTransient(e))
                {
                    if (pos > before)
                    {
                        attempts = 0;
                    }
                    if (++attempts >= options.MaxAttempts)
                    {
                        throw e as DownloadException ?? new DownloadException(FailureReason.SourceUnavailable, $"{file.Path}: {e.Message}", e);
                    }
                    if (item.End is null || !file.SupportsRanges)
                    {
                        // Without ranges the file restarts from its beginning.
                        progress.Add(-(pos - item.Start));
                        if (item.End is null)
                        {
                            budget.Add(file.Path, -(pos - item.Start));
                        }
                        pos = item.Start;
                    }
                    AgentMetrics.Retries.Inc();
                    LogRetry(logger, file.Path, pos, attempts, e.Message);
                    await Task.Delay(Backoff(attempts), time, ct).ConfigureAwait(false);
                }
            }
            if (item.End is not null)
            {
                // The data reaches the disk before the journal says so (power loss must not leave a journalled hole).
                io.Flush(handle);
                staging.MarkDone(job.Index, item.Chunk);
            }
            job.Hasher?.Complete(item.Chunk);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task<T> RetryAsync<T>(Func<Task<T>> action, string what, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await action().ConfigureAwait(false);
            }
            catch (Exception e) when (!ct.IsCancellationRequested && IsTransient(e) && attempt < options.MaxAttempts)
            {
                LogRetry(logger, what, 0, attempt, e.Message);
                await Task.Delay(Backoff(attempt), time, ct).ConfigureAwait(false);
            }
        }
    }

    private TimeSpan Backoff(int attempt) =>
        TimeSpan.FromMilliseconds(Math.Min(options.RetryMaxDelay.TotalMilliseconds, options.RetryDelay.TotalMilliseconds * Math.Pow(2, attempt - 1)));

    private static bool IsTransient(Exception e) => e switch
    {
        DownloadException d => d.Transient,
        HttpRequestException => true,
        OperationCanceledException => true, // the read timeout (the caller's own cancellation is filtered out)
        IOException io => !DiskErrors.IsDiskFull(io),
        _ => false,
    };

    internal static string Bytes(long b) => b switch
    {
        >= 1L << 30 => $"{b / (double)(1L << 30):0.##} GiB",
        >= 1L << 20 => $"{b / (double)(1L << 20):0.##} MiB",
        >= 1L << 10 => $"{b / (double)(1L << 10):0.##} KiB",
        _ => $"{b} B",
    };

    /// <summary>
    /// A URI as it may appear in status, logs, manifests and plans: no user info, no query or fragment
    /// (pre-signed URLs). User info is everything before the last '@' of the authority, so a password with a
    /// '/' or an '@' in it is still cut; when in doubt more is cut, never less.
    /// </summary>
    internal static string SafeUri(string uri)
    {
        var q = uri.IndexOfAny(['?', '#']);
        var s = q >= 0 ? uri[..q] : uri;
        var scheme = s.IndexOf("://", StringComparison.Ordinal);
        if (scheme < 0)
        {
            return s.Contains('@', StringComparison.Ordinal) ? "(redacted)" : s;
        }
        var rest = s[(scheme + 3)..];
        var at = rest.LastIndexOf('@');
        if (at < 0)
        {
            return s;
        }
        var beforeAt = rest[..at];
        var slash = beforeAt.IndexOf('/', StringComparison.Ordinal);
        // "user:pass@host/..." (a ':' before any '/') or "user@host" (no '/' at all) carry user info; "bucket/key@v" does not.
        var colon = beforeAt.IndexOf(':', StringComparison.Ordinal);
        return slash < 0 || (colon >= 0 && colon < slash) ? s[..(scheme + 3)] + rest[(at + 1)..] : s;
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Resuming {StorageKey}: {Staged} bytes already staged")]
    private static partial void LogResume(ILogger logger, string storageKey, long staged);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Retrying {What} at byte {Position} (attempt {Attempt}): {Error}")]
    private static partial void LogRetry(ILogger logger, string what, long position, int attempt, string error);
}

/// <summary>
/// The checksum a file is verified against: the strongest its source offers. SHA-256; else MD5, or S3's multipart
/// ETag (<paramref name="PartSize"/>: the MD5 of the parts' MD5s, then <c>-N</c>); else the git blob SHA-1 the Hub
/// gives for files not in LFS (SHA-1 over <c>blob {size}\0</c> and the bytes: <paramref name="Prefix"/>).
/// </summary>
internal sealed record Checksum(HashAlgorithmName Algorithm, string Expected, long? PartSize = null, byte[]? Prefix = null)
{
    public static Checksum? Of(RemoteFile f) =>
        f.Sha256 is { } sha ? new(HashAlgorithmName.SHA256, sha)
        : f.Md5 is { } md5 ? new(HashAlgorithmName.MD5, md5, f.PartSize)
        : f.GitSha1 is { } git && f.Size is { } size ? new(HashAlgorithmName.SHA1, git, Prefix: System.Text.Encoding.ASCII.GetBytes($"blob {size}\0"))
        : null;

    /// <summary>How messages name it.</summary>
    public string Name => Prefix is not null ? "git-sha1" : Algorithm.Name!.ToLowerInvariant();
}

/// <summary>
/// Hashes a file in chunk order while chunks arrive out of order from parallel streams: each chunk is
/// read back (from the page cache, normally) once it and all before it are written, as its
/// <see cref="Checksum"/> defines the hash.
/// </summary>
internal sealed class OrderedHasher
{
    private readonly SafeFileHandle _handle;
    private readonly TaskCompletionSource[] _ready;
    private readonly long _chunkSize;
    private readonly long _size;
    private readonly long? _partSize;
    private readonly byte[]? _prefix;
    private string? _result;

    public OrderedHasher(SafeFileHandle handle, int chunks, long chunkSize, long size, Checksum checksum)
    {
        _handle = handle;
        _chunkSize = chunkSize;
        _size = size;
        _partSize = checksum.Algorithm == HashAlgorithmName.MD5 ? checksum.PartSize : null;
        _prefix = checksum.Prefix;
        Algorithm = checksum.Algorithm;
        _ready = new TaskCompletionSource[chunks];
        for (var i = 0; i < chunks; i++)
        {
            _ready[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public HashAlgorithmName Algorithm { get; }

    public string Result => _result ?? throw new InvalidOperationException("hash not finished");

    public void Complete(int chunk) => _ready[chunk].TrySetResult();

    public async Task RunAsync(CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(Algorithm);
        using var parts = _partSize is null ? null : IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var partCount = 0;
        long inPart = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            if (_prefix is not null)
            {
                hash.AppendData(_prefix);
            }
            for (var c = 0; c < _ready.Length; c++)
            {
                await _ready[c].Task.WaitAsync(ct).ConfigureAwait(false);
                var pos = c * _chunkSize;
                var end = Math.Min(_size, pos + _chunkSize);
                while (pos < end)
                {
                    var want = (int)Math.Min(buffer.Length, end - pos);
                    if (_partSize is { } ps)
                    {
                        want = (int)Math.Min(want, ps - inPart);
                    }
                    var n = await RandomAccess.ReadAsync(_handle, buffer.AsMemory(0, want), pos, ct).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new IOException("unexpected end of staged file while verifying");
                    }
                    hash.AppendData(buffer, 0, n);
                    pos += n;
                    if (parts is not null && (inPart += n) == _partSize)
                    {
                        parts.AppendData(hash.GetHashAndReset());
                        partCount++;
                        inPart = 0;
                    }
                }
            }
            if (parts is null)
            {
                _result = Convert.ToHexStringLower(hash.GetHashAndReset());
                return;
            }
            if (inPart > 0 || partCount == 0)
            {
                parts.AppendData(hash.GetHashAndReset());
                partCount++;
            }
            _result = $"{Convert.ToHexStringLower(parts.GetHashAndReset())}-{partCount}";
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
