using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using k8s;
using k8s.Models;
using KServe.Node.Admission;
using KServe.Node.Api;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.CacheController.Controllers;
using KServe.Node.CacheController.Webhooks;
using KServe.Node.Hosting;
using KServe.Node.Hosting.Cli;
using KServe.Node.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KServe.Node.CacheController;

/// <summary>Builds the cache-controller process: controllers, webhook server (HTTPS), health and metrics (HTTP).</summary>
internal static class CacheControllerApp
{
    /// <summary>The command line: one flag per <see cref="CacheControllerOptions"/> setting.</summary>
    public static CliApp Cli { get; } = new CliApp("cache-controller", "CACHE_CONTROLLER").Add(
        new CliCommand(null, "Turns LocalModelCaches and LocalModelNodeGroups into per-node LocalModelNodes and PV/PVCs, aggregates their status, and serves their validating webhooks.")
            .Options<CacheControllerOptions>(CacheControllerOptions.Section, f => f
                .ValueName(nameof(CacheControllerOptions.MetricsAddr), "[HOST]:PORT")
                .ValueName(nameof(CacheControllerOptions.HealthProbeAddr), "[HOST]:PORT")
                .ValueName(nameof(CacheControllerOptions.Kubeconfig), "FILE")
                .ValueName(nameof(CacheControllerOptions.WebhookCertFile), "FILE")
                .ValueName(nameof(CacheControllerOptions.WebhookKeyFile), "FILE")
                .ValueName(nameof(CacheControllerOptions.WebhookCertSecret), "NAME")));

    /// <summary>Registers the cluster-scoped kinds with the runtime (their CRD attributes do not carry the scope).</summary>
    public static void RegisterKinds()
    {
        ResourceType.Register<LocalModelCache>(namespaced: false);
        ResourceType.Register<LocalModelNodeGroup>(namespaced: false);
        ResourceType.Register<LocalModelNode>(namespaced: false);
        ResourceType.Register<LocalModelNamespaceCache>(namespaced: true);
        ResourceType.Register<InferenceServiceMetadata>(namespaced: true);
        ResourceType.Register<LlmInferenceServiceMetadata>(namespaced: true);
    }

    /// <summary>
    /// Builds the app. <paramref name="client"/> replaces the in-cluster or kubeconfig client (tests and the benchmark
    /// point it at the test API server).
    /// </summary>
    public static WebApplication Build(string[] args, Kubernetes? client = null, Action<WebApplicationBuilder>? configure = null) =>
        Build(Cli.Parse(args), client, configure);

    /// <summary>Builds the app from a parsed command line; a missing cluster, a port in use or bad settings throw one-line errors.</summary>
    public static WebApplication Build(CliResult cli, Kubernetes? client = null, Action<WebApplicationBuilder>? configure = null)
    {
        RegisterKinds();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddCommandLine(cli);
        builder.AddServiceDefaults("cache-controller");
        builder.Services.AddValidatedOptions<CacheControllerOptions>(builder.Configuration, CacheControllerOptions.Section);
        configure?.Invoke(builder);

        var options = builder.Configuration.GetSection(CacheControllerOptions.Section).Get<CacheControllerOptions>() ?? new CacheControllerOptions();
        var listeners = Daemon.ControllerListeners(options.MetricsAddr, options.HealthProbeAddr);
        var webhook = new IPEndPoint(IPAddress.TryParse(options.WebhookAddress, out var ip) ? ip
            : throw new CliException($"--webhook-address must be an IP address, got '{options.WebhookAddress}'"), options.WebhookPort);
        if (options.EnableWebhooks)
        {
            Daemon.EnsurePortFree("--webhook-port", webhook);
        }
        if (client is null)
        {
            client = KubeConnection.TryConnect(options.Kubeconfig, TimeSpan.FromSeconds(10), out var c, out var problem) ? c! : throw new StartupException(problem);
        }
        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(client);
        services.AddKubernetesRuntime();
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CacheControllerOptions>>().Value;
            var k = sp.GetRequiredService<Kubernetes>();
            var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("KServe.Node.CacheController");
            ApplyKServeConfig(k, o, log);
            var state = new ClusterState(sp.GetRequiredService<SharedInformerFactory>(), o);
            // A kind that is not served would keep its informer from ever syncing, and the controller from starting.
            state.IsvcWatched = !o.DisableVolumeManagement && Served<InferenceServiceMetadata>(k);
            state.LlmWatched = state.IsvcWatched && (o.LlmInferenceServices == FeatureSwitch.Auto
                ? Served<LlmInferenceServiceMetadata>(k)
                : o.LlmInferenceServices == FeatureSwitch.Enabled);
            Log.IsvcWatch(log, state.IsvcWatched ? "on" : "off", state.LlmWatched ? "on" : "off");
            return state;
        });
        services.AddSingleton(sp => new EventRecorder(sp.GetRequiredService<Kubernetes>(), "cache-controller", null,
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<EventRecorder>>()));
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CacheControllerOptions>>().Value;
            var election = o.LeaderElect
                ? new LeaderElectionOptions { LeaseName = o.LeaseName, LeaseNamespace = o.LeaseNamespace }
                : null;
            return new ControllerSet(sp.GetRequiredService<ClusterState>(), sp.GetRequiredService<SharedInformerFactory>(),
                sp.GetRequiredService<EventRecorder>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), election);
        });
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<ControllerSet>().Clusters);
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<ControllerSet>().Namespaced);
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<ControllerSet>().Nodes);
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<ControllerSet>().Groups);
        services.AddHealthChecks().Add(new HealthCheckRegistration("controllers",
            sp => new ControllersHealthCheck(sp.GetRequiredService<ControllerSet>()), HealthStatus.Unhealthy, [ServiceDefaults.ReadyTag]));

        services.AddSingleton<IAdmissionLookups, ApiAdmissionLookups>();
        services.AddSingleton<CacheValidator>();
        CertificateSource? certificates = null;
        if (options.EnableWebhooks)
        {
            certificates = services.AddWebhookCertificate(client, new WebhookCertificateSettings
            {
                ServiceName = options.WebhookServiceName,
                Namespace = options.WebhookServiceNamespace,
                ExtraNames = [.. options.WebhookExtraNames],
                CertFile = options.WebhookCertFile,
                KeyFile = options.WebhookKeyFile,
                SecretName = options.WebhookCertSecret,
                ResyncSeconds = options.WebhookCertResyncSeconds,
            });
            services.AddSingleton(certificates);
            services.AddSingleton(sp => new CaBundlePatcher(sp.GetRequiredService<Kubernetes>(), [.. options.WebhookConfigurations], certificates,
                TimeSpan.FromSeconds(30), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<CaBundlePatcher>>()));
            services.AddHostedService(sp => sp.GetRequiredService<CaBundlePatcher>());
        }

        builder.WebHost.ConfigureKestrel(k =>
        {
            foreach (var endpoint in listeners)
            {
                k.Listen(endpoint);
            }
            if (certificates is not null)
            {
                k.Listen(webhook, l => l.UseHttps(certificates));
            }
        });

        var app = builder.Build();
        app.MapServiceDefaults();
        if (certificates is not null)
        {
            app.MapCacheWebhooks();
        }

        return app;
    }

    /// <summary>
    /// Reads KServe's <c>inferenceservice-config</c> <c>localModel</c> JSON (when a namespace is configured and it exists)
    /// for the settings not given explicitly.
    /// </summary>
    private static void ApplyKServeConfig(Kubernetes client, CacheControllerOptions o, ILogger log)
    {
        if (string.IsNullOrEmpty(o.ConfigMapNamespace))
        {
            return;
        }

        var cm = new ResourceClient<V1ConfigMap>(client).GetAsync(new ObjectKey(o.ConfigMapNamespace, o.ConfigMapName)).GetAwaiter().GetResult();
        if (cm?.Data?.TryGetValue(KServeNames.LocalModelConfigKey, out var json) != true || string.IsNullOrWhiteSpace(json))
        {
            return;
        }

        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.TryGetProperty("jobNamespace", out var ns) && ns.ValueKind == JsonValueKind.String && ns.GetString() is { Length: > 0 } jobNs
            && o.JobNamespace == KServeNames.DefaultJobNamespace)
        {
            o.JobNamespace = jobNs;
        }

        if (root.TryGetProperty("disableVolumeManagement", out var dv) && dv.ValueKind == JsonValueKind.True)
        {
            o.DisableVolumeManagement = true;
        }

        log.LogInformation("localModel config from {Namespace}/{Name}: jobNamespace={JobNamespace} disableVolumeManagement={Disable}",
            o.ConfigMapNamespace, o.ConfigMapName, o.JobNamespace, o.DisableVolumeManagement);
    }

    private static bool Served<T>(Kubernetes client) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        try
        {
            new ResourceClient<T>(client).ListAsync(options: new ListOptions { PageSize = 1 }).GetAwaiter().GetResult();
            return true;
        }
        catch (KubernetesApiException e) when (e.IsNotFound)
        {
            return false;
        }
    }

    private sealed class ControllersHealthCheck(ControllerSet controllers) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(controllers.All.All(c => c.Started.IsCompletedSuccessfully)
                ? HealthCheckResult.Healthy("informers synced")
                : HealthCheckResult.Unhealthy("informers not synced yet"));
    }
}
