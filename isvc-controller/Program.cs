using KServe.Node.Hosting.Cli;
using KServe.Node.IsvcController;

// isvc-controller: reconciles InferenceServices of the kserve-node-llm runtime (all of them with --all) into
// Deployment, Service, HPA and HTTPRoutes placed on nodes holding the cached model, and serves the validating webhook.
return await Daemon.RunAsync(IsvcControllerApp.Cli, args, (cli, _) => Daemon.RunHostAsync(IsvcControllerApp.Build(cli)));
