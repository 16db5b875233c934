namespace KServe.Node.Agent.Sources;

/// <summary>One file of a model as the source lists it.</summary>
/// <param name="Path">Relative path inside the model folder, '/'-separated, already validated.</param>
/// <param name="Size">Byte length, or null when the source does not say (a chunked HTTP response).</param>
/// <param name="Md5">Lower-case hex MD5 of the content when the source vouches for it (an S3 single-part ETag without
/// SSE-KMS/SSE-C), or an S3 multipart ETag <c>hex-N</c>: the MD5 of the parts' MD5s.</param>
/// <param name="Sha256">Lower-case hex SHA-256 when the source gives it (Hub LFS oid, Repr-Digest).</param>
/// <param name="Version">Opaque identity (ETag, commit) used to decide whether a partial download can resume.</param>
/// <param name="Locator">Source-specific address (URL or object key).</param>
/// <param name="SupportsRanges">Whether byte ranges may be requested (parallel chunks, resume).</param>
/// <param name="PartSize">For a multipart <paramref name="Md5"/>: the size of every part but the last.</param>
/// <param name="GitSha1">The git blob SHA-1 (the Hub's <c>oid</c> of a file not in LFS).</param>
internal sealed record RemoteFile(string Path, long? Size, string? Md5, string? Sha256, string? Version, string Locator, bool SupportsRanges = true,
    long? PartSize = null, string? GitSha1 = null);

/// <summary>A model source chosen by URI scheme: lists files and serves byte ranges.</summary>
internal interface IModelSource : IDisposable
{
    /// <summary>Lists the model's files (unfiltered; paths validated).</summary>
    Task<IReadOnlyList<RemoteFile>> ListAsync(CancellationToken ct);

    /// <summary>
    /// Opens the bytes [<paramref name="start"/>, <paramref name="endInclusive"/>] of a file; a null end means
    /// to the end. The stream must yield exactly those bytes or throw.
    /// </summary>
    Task<Stream> OpenReadAsync(RemoteFile file, long start, long? endInclusive, CancellationToken ct);
}

/// <summary>Why a download failed: a CamelCase reason for status messages and the failures metric.</summary>
internal enum FailureReason
{
    InvalidUri,
    InvalidSettings,
    NotFound,
    AccessDenied,
    SourceUnavailable,
    UnsafePath,
    UnsafeRedirect,
    SourceChanged,
    ChecksumMismatch,
    Unverifiable,
    SizeMismatch,
    InsufficientStorage,
    StorageLimitExceeded,
    DiskFull,
    NoFiles,
    IoError,
    Conflict,
}

/// <summary>A download failure with a reason and a one-line message that never carries a secret.</summary>
internal sealed class DownloadException : Exception
{
    public DownloadException(FailureReason reason, string message, Exception? inner = null)
        : base(message, inner) => Reason = reason;

    public DownloadException() : this(FailureReason.IoError, "download failed") { }

    public DownloadException(string message) : this(FailureReason.IoError, message) { }

    public DownloadException(string message, Exception inner) : this(FailureReason.IoError, message, inner) { }

    public FailureReason Reason { get; }

    /// <summary>The HTTP status the source answered, where the failure is one.</summary>
    public int? HttpStatus { get; init; }

    /// <summary>Transient failures (source down, connection reset) are retried; the others are final for this attempt.</summary>
    public bool Transient => Reason == FailureReason.SourceUnavailable;
}

/// <summary>
/// Validates object keys before they become paths: a key that is absolute, contains <c>..</c>, a NUL, a
/// backslash or an empty segment is refused, so nothing can be written outside the model folder.
/// </summary>
internal static class PathGuard
{
    public static string Validate(string relative, string what)
    {
        if (string.IsNullOrEmpty(relative))
        {
            throw new DownloadException(FailureReason.UnsafePath, $"{what}: empty file name");
        }
        if (relative.StartsWith('/') || relative.Contains('\\', StringComparison.Ordinal) || relative.Contains('\0', StringComparison.Ordinal)
            || (relative.Length >= 2 && relative[1] == ':'))
        {
            throw new DownloadException(FailureReason.UnsafePath, $"{what}: unsafe file name '{Printable(relative)}' (absolute or with a backslash)");
        }
        foreach (var segment in relative.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == "..")
            {
                throw new DownloadException(FailureReason.UnsafePath, $"{what}: unsafe file name '{Printable(relative)}' (empty, '.' or '..' segment)");
            }
        }
        return relative;
    }

    /// <summary>Joins a validated relative path under a folder and checks the result stays inside it.</summary>
    public static string Combine(string folder, string relative)
    {
        var full = Path.GetFullPath(Path.Combine(folder, relative));
        var root = Path.GetFullPath(folder).TrimEnd('/') + "/";
        if (!full.StartsWith(root, StringComparison.Ordinal))
        {
            throw new DownloadException(FailureReason.UnsafePath, $"unsafe file name '{Printable(relative)}' escapes the model folder");
        }
        return full;
    }

    private static string Printable(string s) => s.Length > 200 ? s[..200] + "…" : s.Replace('\0', '?');
}

/// <summary>
/// The allow/ignore filter (KServe's <c>allowPatterns</c> / <c>ignorePatterns</c>: comma-separated fnmatch
/// globs where <c>*</c> also crosses '/', as in huggingface_hub).
/// </summary>
internal sealed class FileFilter
{
    private readonly string[] _allow;
    private readonly string[] _ignore;

    public FileFilter(string? allow, string? ignore)
    {
        _allow = Split(allow);
        _ignore = Split(ignore);
    }

    public static FileFilter All { get; } = new(null, null);

    public bool IsEmpty => _allow.Length == 0 && _ignore.Length == 0;

    /// <summary>The allow patterns, normalised (trimmed, comma-joined): what the manifest records.</summary>
    public string AllowPatterns => string.Join(',', _allow);

    public string IgnorePatterns => string.Join(',', _ignore);

    public bool Includes(string path) =>
        (_allow.Length == 0 || _allow.Any(p => Glob.Matches(p, path)))
        && !_ignore.Any(p => Glob.Matches(p, path));

    public override string ToString() => $"allow=[{string.Join(',', _allow)}] ignore=[{string.Join(',', _ignore)}]";

    private static string[] Split(string? s) =>
        string.IsNullOrWhiteSpace(s) ? [] : s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

/// <summary>fnmatch-style globbing: <c>*</c> any run, <c>?</c> one character, <c>[abc]</c> a class.</summary>
internal static class Glob
{
    public static bool Matches(string pattern, string text) => Match(pattern.AsSpan(), text.AsSpan());

    private static bool Match(ReadOnlySpan<char> p, ReadOnlySpan<char> t)
    {
        int pi = 0, ti = 0, starP = -1, starT = 0;
        while (ti < t.Length)
        {
            if (pi < p.Length && p[pi] == '*')
            {
                starP = pi++;
                starT = ti;
                continue;
            }
            if (pi < p.Length && MatchOne(p, ref pi, t[ti], out var consumed))
            {
                pi = consumed;
                ti++;
                continue;
            }
            if (starP < 0)
            {
                return false;
            }
            pi = starP + 1;
            ti = ++starT;
        }
        while (pi < p.Length && p[pi] == '*')
        {
            pi++;
        }
        return pi == p.Length;
    }

    // Matches one pattern element at pi against c; on success sets next to the index after the element.
    private static bool MatchOne(ReadOnlySpan<char> p, ref int pi, char c, out int next)
    {
        next = pi + 1;
        if (p[pi] == '?')
        {
            return true;
        }
        if (p[pi] == '[')
        {
            var close = p[(pi + 1)..].IndexOf(']');
            if (close > 0)
            {
                var cls = p.Slice(pi + 1, close);
                next = pi + close + 2;
                var negate = cls.Length > 0 && (cls[0] == '!' || cls[0] == '^');
                if (negate)
                {
                    cls = cls[1..];
                }
                var hit = false;
                for (var i = 0; i < cls.Length; i++)
                {
                    if (i + 2 < cls.Length && cls[i + 1] == '-')
                    {
                        hit |= c >= cls[i] && c <= cls[i + 2];
                        i += 2;
                    }
                    else
                    {
                        hit |= c == cls[i];
                    }
                }
                return hit != negate;
            }
        }
        return p[pi] == c;
    }
}
