using KServe.Node.CacheController;
using KServe.Node.Hosting.Cli;

// cache-controller: reconciles LocalModelCache / LocalModelNamespaceCache into LocalModelNodes, volumes and status,
// and serves their validating webhooks. Flags: see --help.
return await Daemon.RunAsync(CacheControllerApp.Cli, args, (cli, _) => Daemon.RunHostAsync(CacheControllerApp.Build(cli)));
