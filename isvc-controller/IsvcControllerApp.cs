using k8s;
using KServe.Node.Admission;
using KServe.Node.Hosting;
using KServe.Node.Hosting.Cli;
using KServe.Node.IsvcController.Webhook;
using KServe.Node.Runtime;
using Microsoft.Extensions.Options;

namespace KServe.Node.IsvcController;

/// <summary>
/// Builds the isvc-controller process: the InferenceService controller, its validating webhook (HTTPS, with the
/// certificate all replicas share through a Secret, whose CA goes into the webhook configuration's caBundle), health and
/// metrics (HTTP).
/// </summary>
internal static class IsvcControllerApp
{
    /// <summary>The command line: one flag per <see cref="IsvcControllerOptions"/> setting.</summary>
    public static CliApp Cli { get; } = new CliApp("isvc-controller", "ISVC_CONTROLLER").Add(
        new CliCommand(null, "Turns InferenceServices of the kserve-node-llm runtime (all of them with --all) into a Deployment, Service, HPA and HTTPRoute placed on nodes that hold the cached model, and serves their validating webhook.")
            .Options<IsvcControllerOptions>(IsvcControllerOptions.Section, f => f
                .ValueName(nameof(IsvcControllerOptions.MetricsAddr), "[HOST]:PORT")
                .ValueName(nameof(IsvcControllerOptions.HealthProbeAddr), "[HOST]:PORT")
                .ValueName(nameof(IsvcControllerOptions.Kubeconfig), "FILE")
                .ValueName(nameof(IsvcControllerOptions.WebhookCertFile), "FILE")
                .ValueName(nameof(IsvcControllerOptions.WebhookKeyFile), "FILE")
                .ValueName(nameof(IsvcControllerOptions.WebhookCertSecret), "NAME")));

    public static WebApplication Build(CliResult cli)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddCommandLine(cli);
        builder.AddServiceDefaults("isvc-controller");
        builder.Services.AddValidatedOptions<IsvcControllerOptions>(builder.Configuration, IsvcControllerOptions.Section);
        var options = builder.Configuration.GetSection(IsvcControllerOptions.Section).Get<IsvcControllerOptions>() ?? new IsvcControllerOptions();
        var listeners = Daemon.ControllerListeners(options.MetricsAddr, options.HealthProbeAddr);
        if (options.WebhookPort > 0)
        {
            Daemon.EnsurePortFree("--webhook-port", "0.0.0.0", options.WebhookPort);
        }
        var client = KubeConnection.TryConnect(options.Kubeconfig, TimeSpan.FromSeconds(10), out var c, out var problem) ? c! : throw new StartupException(problem);

        builder.Services.AddSingleton(client);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddKubernetesRuntime();
        builder.Services.AddSingleton<IHostedService>(sp =>
        {
            var time = sp.GetRequiredService<TimeProvider>();
            var podName = Environment.GetEnvironmentVariable("POD_NAME");
            var events = new EventRecorder(client, "isvc-controller", podName, time, sp.GetRequiredService<ILogger<EventRecorder>>());
            var election = options.LeaderElect
                ? new LeaderElectionOptions { LeaseNamespace = options.PodNamespace, LeaseName = options.LeaseName, Identity = podName ?? Environment.MachineName }
                : null;
            return IsvcControllerSetup.Build(
                sp.GetRequiredService<SharedInformerFactory>(), sp.GetRequiredService<IOptions<IsvcControllerOptions>>().Value,
                events, time, sp.GetRequiredService<ILoggerFactory>(), election);
        });

        var certificates = options.WebhookPort > 0
            ? builder.Services.AddWebhookCertificate(client, new WebhookCertificateSettings
            {
                ServiceName = options.WebhookServiceName,
                Namespace = options.PodNamespace,
                ExtraNames = ["localhost", "127.0.0.1"],
                CertFile = options.WebhookCertFile,
                KeyFile = options.WebhookKeyFile,
                SecretName = options.WebhookCertSecret,
                ResyncSeconds = options.WebhookCertResyncSeconds,
            })
            : null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var endpoint in listeners)
            {
                kestrel.Listen(endpoint);
            }
            if (certificates is not null)
            {
                kestrel.ListenAnyIP(options.WebhookPort, listen => listen.UseHttps(certificates));
            }
        });
        if (certificates is not null && !string.IsNullOrEmpty(options.WebhookConfigurationName))
        {
            builder.Services.AddHostedService(sp => new CaBundlePatcher(client, [options.WebhookConfigurationName], certificates,
                TimeSpan.FromSeconds(30), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<CaBundlePatcher>>()));
        }

        var app = builder.Build();
        app.MapServiceDefaults();
        app.MapAdmissionWebhook();
        return app;
    }
}
