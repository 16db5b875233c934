using k8s;
using KServe.Node.Hosting;
using KServe.Node.IsvcController;
using KServe.Node.IsvcController.Webhook;
using KServe.Node.Runtime;
using Microsoft.Extensions.Options;

// isvc-controller: reconciles InferenceServices of the kserve-node-llm runtime (all of them with --all) into
// Deployment, Service, HPA and HTTPRoutes placed on nodes holding the cached model, and serves the validating webhook.
var builder = WebApplication.CreateBuilder(FlagsToConfiguration(args));
builder.AddServiceDefaults("isvc-controller");
builder.Services.AddOptions<IsvcControllerOptions>()
    .Bind(builder.Configuration.GetSection(IsvcControllerOptions.Section))
    .ValidateDataAnnotations()
    .ValidateOnStart();

KubernetesClientConfiguration kubeConfig;
try
{
    kubeConfig = KubernetesClientConfiguration.IsInCluster()
        ? KubernetesClientConfiguration.InClusterConfig()
        : KubernetesClientConfiguration.BuildConfigFromConfigFile(Environment.GetEnvironmentVariable("KUBECONFIG"));
}
catch (Exception e) when (e is k8s.Exceptions.KubeConfigException or IOException)
{
    await Console.Error.WriteLineAsync($"isvc-controller: no cluster to talk to: not in a pod and no usable kubeconfig (KUBECONFIG or ~/.kube/config): {e.Message}").ConfigureAwait(false);
    return 2;
}

builder.Services.AddSingleton(new Kubernetes(kubeConfig));
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddKubernetesRuntime();
var leaderElect = builder.Configuration.GetValue<bool>("LeaderElect");
builder.Services.AddSingleton<IHostedService>(sp =>
{
    var client = sp.GetRequiredService<Kubernetes>();
    var time = sp.GetRequiredService<TimeProvider>();
    var podName = Environment.GetEnvironmentVariable("POD_NAME");
    var events = new EventRecorder(client, "isvc-controller", podName, time, sp.GetRequiredService<ILogger<EventRecorder>>());
    var election = leaderElect
        ? new LeaderElectionOptions
        {
            LeaseNamespace = Environment.GetEnvironmentVariable("POD_NAMESPACE") ?? "kserve-node",
            LeaseName = "kserve-node-isvc-controller",
            Identity = podName ?? Environment.MachineName,
        }
        : null;
    return IsvcControllerSetup.Build(
        sp.GetRequiredService<SharedInformerFactory>(), sp.GetRequiredService<IOptions<IsvcControllerOptions>>().Value,
        events, time, sp.GetRequiredService<ILoggerFactory>(), election);
});

// Health and metrics on plain HTTP; the webhook on HTTPS with a self-signed certificate whose PEM goes into the
// webhook configuration's caBundle.
var startOptions = builder.Configuration.GetSection(IsvcControllerOptions.Section).Get<IsvcControllerOptions>() ?? new IsvcControllerOptions();
var podNamespace = Environment.GetEnvironmentVariable("POD_NAMESPACE") ?? "kserve-node";
var certificate = startOptions.WebhookPort > 0
    ? WebhookCertificate.Create(startOptions.WebhookServiceName, podNamespace, TimeProvider.System, TimeSpan.FromDays(365))
    : null;
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.ListenAnyIP(startOptions.HttpPort);
    if (certificate is not null)
    {
        kestrel.ListenAnyIP(startOptions.WebhookPort, listen => listen.UseHttps(certificate));
    }
});
if (certificate is not null && !string.IsNullOrEmpty(startOptions.WebhookConfigurationName) && KubernetesClientConfiguration.IsInCluster())
{
    builder.Services.AddHostedService(sp => new CaBundleInjector(
        sp.GetRequiredService<Kubernetes>(), certificate, startOptions.WebhookConfigurationName,
        sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<CaBundleInjector>>()));
}

var app = builder.Build();
app.MapServiceDefaults();
app.MapAdmissionWebhook();
await app.RunAsync().ConfigureAwait(false);
return 0;

// `--all` and `--leader-elect` are the documented switches; they map onto configuration keys.
static string[] FlagsToConfiguration(string[] args) =>
    [.. args.Select(a => a switch
    {
        "--all" => $"--{IsvcControllerOptions.Section}:All=true",
        "--leader-elect" => "--LeaderElect=true",
        _ => a,
    })];
