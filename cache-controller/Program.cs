using KServe.Node.CacheController;

// cache-controller: reconciles LocalModelCache / LocalModelNamespaceCache into LocalModelNodes, volumes and status,
// and serves their validating webhooks. Settings: section CacheController (appsettings, environment, command line).
var app = CacheControllerApp.Build(args);
await app.RunAsync().ConfigureAwait(false);
return 0;
