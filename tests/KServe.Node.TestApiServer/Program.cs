using System.Globalization;
using KServe.Node.TestKit;
using KServe.Node.TestKit.ApiServer;

// Usage: dotnet run --project tests/KServe.Node.TestApiServer -- [--port N] [--kubeconfig PATH] [--crds DIR]... [--no-crds]
// Prints the server URL and the kubeconfig path, then serves until Ctrl+C / SIGTERM.
var port = 0;
string? kubeconfig = null;
var crdDirs = new List<string>();
var defaultCrds = true;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--port":
            var text = Next();
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535)
            {
                Console.Error.WriteLine($"--port: '{text}' is not a port number (0..65535)");
                return 2;
            }
            break;
        case "--kubeconfig":
            kubeconfig = Next();
            break;
        case "--crds":
            crdDirs.Add(Next());
            break;
        case "--no-crds":
            defaultCrds = false;
            break;
        case "-h" or "--help":
            Console.WriteLine("usage: KServe.Node.TestApiServer [--port N] [--kubeconfig PATH] [--crds DIR]... [--no-crds]");
            Console.WriteLine("  --port N          loopback port (0 = any free port; default 0)");
            Console.WriteLine("  --kubeconfig PATH where to write a kubeconfig for the server (default: a temp file)");
            Console.WriteLine("  --crds DIR        apply the CRDs in DIR/*.yaml at start (default: daemonset/crds when present)");
            Console.WriteLine("  --no-crds         start without the project's CRDs");
            return 0;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}' (try --help)");
            return 2;
    }
}

if (defaultCrds && crdDirs.Count == 0)
{
    try
    {
        if (Directory.Exists(RepoPaths.Crds) && Directory.GetFiles(RepoPaths.Crds, "*.yaml").Length > 0)
        {
            crdDirs.Add(RepoPaths.Crds);
        }
    }
    catch (InvalidOperationException)
    {
        // Not run from the repository: no default CRDs.
    }
}

await using var server = await TestApiServer.StartAsync(new TestApiServerOptions { Port = port });
foreach (var dir in crdDirs)
{
    await server.ApplyCrdsFromDirectoryAsync(dir);
}
kubeconfig ??= Path.Combine(Path.GetTempPath(), $"kserve-node-test-apiserver-{server.BaseUri.Port}.kubeconfig");
server.WriteKubeconfig(kubeconfig);
Console.WriteLine($"URL: {server.BaseUri.ToString().TrimEnd('/')}");
Console.WriteLine($"Kubeconfig: {Path.GetFullPath(kubeconfig)}");
foreach (var dir in crdDirs)
{
    Console.WriteLine($"CRDs: {Path.GetFullPath(dir)}");
}
Console.WriteLine($"Try: kubectl --kubeconfig {Path.GetFullPath(kubeconfig)} get nodes");
Console.Out.Flush();

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx =>
{
    ctx.Cancel = true;
    stop.Cancel();
});
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}
return 0;
