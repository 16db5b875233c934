using KServe.Node.Hosting.Cli;
using KServe.Node.LlmServer;
using KServe.Node.LlmServer.Hosting;

return await Daemon.RunAsync(ServerCommandLine.App, args, (cli, _) => LlmServerApp.RunAsync(cli));
