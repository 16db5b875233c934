using KServe.Node.Agent;
using KServe.Node.Agent.Cli;
using Microsoft.AspNetCore.Builder;

// node-agent: the verb decides the mode (see CommandLine.Usage).
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
try
{
    var cl = CommandLine.Parse(args, new HashSet<string>(StringComparer.Ordinal) { "verbose", "json" });
    return cl.Verb switch
    {
        "download" => await DownloadCommand.RunAsync(cl, Console.Error, cts.Token),
        "list" => await ListCommand.RunAsync(cl, Console.Out, cts.Token),
        "standalone" => await RunHostAsync(AgentHost.BuildStandalone(cl)),
        "help" => PrintUsage(Console.Out, 0),
        null => await RunHostAsync(KServe.Node.Agent.Kubernetes.KubernetesMode.Build(cl)),
        _ => throw new UsageException($"unknown verb '{cl.Verb}'"),
    };
}
catch (UsageException e)
{
    await Console.Error.WriteLineAsync($"node-agent: {e.Message}");
    return PrintUsage(Console.Error, 2);
}
catch (KServe.Node.Agent.Store.RootLockedException e)
{
    await Console.Error.WriteLineAsync($"node-agent: {e.Message}");
    return 3;
}
catch (OperationCanceledException) when (cts.IsCancellationRequested)
{
    await Console.Error.WriteLineAsync("node-agent: cancelled");
    return 130;
}

static int PrintUsage(TextWriter w, int code)
{
    w.WriteLine(CommandLine.Usage);
    return code;
}

static async Task<int> RunHostAsync(WebApplication app)
{
    await using (app)
    {
        await app.RunAsync();
    }
    return 0;
}
