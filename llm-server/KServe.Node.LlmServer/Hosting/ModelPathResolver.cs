using System.Text.RegularExpressions;
using KServe.Node.Hosting.Cli;

namespace KServe.Node.LlmServer.Hosting;

/// <summary>The model path cannot be resolved to one GGUF file; the message says why and lists candidates.</summary>
public sealed class ModelPathException : StartupException
{
    public ModelPathException(string message) : base(message) { }
    public ModelPathException() { }
    public ModelPathException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// Which GGUF llm-server serves (the house contract): given a file, that file; given a folder, the single
/// <c>.gguf</c> in it, or the first part of a single split set (<c>*-00001-of-0000N.gguf</c>); several candidates
/// refuse to start and are listed, and <c>--model-file NAME</c> picks one.
/// </summary>
public static partial class ModelPathResolver
{
    [GeneratedRegex(@"^(?<stem>.+)-(?<part>\d{5})-of-(?<total>\d{5})\.gguf$", RegexOptions.IgnoreCase)]
    private static partial Regex SplitPart();

    /// <summary>Fails with one line naming <paramref name="flag"/> when <paramref name="file"/> cannot be opened for reading.</summary>
    public static void EnsureReadable(string file, string flag)
    {
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelPathException($"{flag} '{file}' cannot be read: {e.Message} (check the path and its permissions)");
        }
    }

    public static string Resolve(string model, string? modelFile)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        if (File.Exists(model))
        {
            if (modelFile is not null)
            {
                throw new ModelPathException($"--model-file '{modelFile}' applies only when --model is a folder; '{model}' is a file.");
            }
            return Path.GetFullPath(model);
        }
        if (!Directory.Exists(model))
        {
            throw new ModelPathException($"--model '{model}' is neither a file nor a folder.");
        }
        if (modelFile is not null)
        {
            if (modelFile.Contains("..", StringComparison.Ordinal) || Path.IsPathRooted(modelFile))
            {
                throw new ModelPathException($"--model-file '{modelFile}' must name a file inside '{model}'.");
            }
            var picked = Path.Combine(model, modelFile);
            return File.Exists(picked)
                ? Path.GetFullPath(picked)
                : throw new ModelPathException($"--model-file '{modelFile}' does not exist in '{model}'. Candidates: {string.Join(", ", Candidates(model))}");
        }
        var candidates = Candidates(model);
        return candidates.Count switch
        {
            0 => throw new ModelPathException($"No .gguf file in '{model}'."),
            1 => Path.GetFullPath(Path.Combine(model, candidates[0])),
            _ => throw new ModelPathException(
                $"'{model}' holds several models: {string.Join(", ", candidates)}. Pick one with --model-file NAME."),
        };
    }

    /// <summary>Relative paths of the candidate models in a folder (split sets reduced to their first part).</summary>
    public static List<string> Candidates(string folder)
    {
        var files = Directory.EnumerateFiles(folder, "*", new EnumerationOptions { RecurseSubdirectories = true, MatchCasing = MatchCasing.CaseInsensitive })
            .Where(f => f.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            .Select(f => Path.GetRelativePath(folder, f))
            .Where(f => !Path.GetFileName(f).StartsWith('.'))
            .Order(StringComparer.Ordinal)
            .ToList();
        var result = new List<string>();
        foreach (var f in files)
        {
            var m = SplitPart().Match(Path.GetFileName(f));
            if (!m.Success)
            {
                result.Add(f);
            }
            else if (int.Parse(m.Groups["part"].Value, System.Globalization.CultureInfo.InvariantCulture) == 1)
            {
                result.Add(f);
            }
        }
        return result;
    }
}
