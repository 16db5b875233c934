namespace KServe.Node.TestKit;

/// <summary>Locates the repository root (the folder holding KServe.Node.sln) from the test binaries.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> LazyRoot = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KServe.Node.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"KServe.Node.sln not found above {AppContext.BaseDirectory}");
    });

    public static string Root => LazyRoot.Value;

    /// <summary>The project's CustomResourceDefinitions (daemonset/crds).</summary>
    public static string Crds => Path.Combine(Root, "daemonset", "crds");
}
