using System.Diagnostics;

namespace KServe.Node.LlmServer.Tests;

/// <summary>Locates the repository, the llama.cpp source tree and node, failing loudly when one is missing.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Templates => Path.Combine(Root, ".native", "llama.cpp", "models", "templates");

    public static string JinjaModule => Path.Combine(Root, "tools", "node", "node_modules", "@huggingface", "jinja", "dist", "index.js");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KServe.Node.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("KServe.Node.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Runs node with a script, feeding stdin; returns stdout. Throws when node is missing or fails.</summary>
    public static Task<string> RunNodeAsync(string script, string stdin, CancellationToken ct) => RunAsync("node", script, stdin, ct);

    /// <summary>Debian's own python3 (python3-jinja2 is a Debian package; a pyenv python on PATH would not see it).</summary>
    public static string DebianPython => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    public static async Task<string> RunAsync(string program, string script, string stdin, CancellationToken ct)
    {
        var node = program;
        var psi = new ProcessStartInfo(program, [script])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException(node + " did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException(node + " is not installed (run scripts/setup.sh): " + e.Message, e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            await process.StandardInput.WriteAsync(stdin.AsMemory(), ct);
            process.StandardInput.Close();
            await process.WaitForExitAsync(ct);
            var output = await stdout;
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{node} exited with {process.ExitCode}: {await stderr}");
            }
            return output;
        }
    }
}
