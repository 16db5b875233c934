namespace KServe.Node.Gguf.Tests;

internal static class RepoPaths
{
    /// <summary>The repository root: the nearest folder above the test binaries holding KServe.Node.sln.</summary>
    public static string Root { get; } = FindRoot();

    public static string Vocab(string name)
    {
        var path = Path.Combine(Root, ".native", "llama.cpp", "models", $"ggml-vocab-{name}.gguf");
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: run scripts/setup.sh", path);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KServe.Node.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("KServe.Node.sln not found above " + AppContext.BaseDirectory);
    }
}
