using KServe.Node.Agent;
using KServe.Node.Agent.Cli;
using KServe.Node.Agent.Kubernetes;
using KServe.Node.Hosting.Cli;

// node-agent: the verb decides the mode (see --help).
return await Daemon.RunAsync(AgentCli.App, args, (cli, ct) => cli.Verb switch
{
    "download" => DownloadCommand.RunAsync(cli, Console.Error, ct),
    "list" => ListCommand.RunAsync(cli, Console.Out, ct),
    "standalone" => Daemon.RunHostAsync(AgentHost.BuildStandalone(cli)),
    _ => Daemon.RunHostAsync(KubernetesMode.Build(cli)),
});
