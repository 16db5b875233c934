using System.Security.Cryptography.X509Certificates;
using System.Text;
using k8s;
using k8s.Models;
using KServe.Node.Runtime;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KServe.Node.IsvcController.Webhook;

/// <summary>Writes the webhook certificate's PEM into the caBundle of every webhook of our ValidatingWebhookConfiguration.</summary>
internal sealed partial class CaBundleInjector(
    Kubernetes client, X509Certificate2 certificate, string configurationName, TimeProvider time, ILogger<CaBundleInjector> logger) : BackgroundService
{
    private static readonly TimeSpan s_retry = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var configs = new ResourceClient<V1ValidatingWebhookConfiguration>(client);
        var bundle = Encoding.UTF8.GetBytes(WebhookCertificate.CaBundlePem(certificate));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (await InjectAsync(configs, configurationName, bundle, stoppingToken).ConfigureAwait(false))
                {
                    Injected(logger, configurationName);
                    return;
                }

                NotFound(logger, configurationName);
            }
            catch (Exception e) when (e is KubernetesApiException or HttpRequestException)
            {
                Failed(logger, e, configurationName);
            }

            await Task.Delay(s_retry, time, stoppingToken).ConfigureAwait(false);
        }
    }

    /// <summary>Sets the caBundle; false when the configuration does not exist (yet).</summary>
    internal static async Task<bool> InjectAsync(ResourceClient<V1ValidatingWebhookConfiguration> configs, string name, byte[] bundle, CancellationToken ct)
    {
        var current = await configs.GetAsync(ObjectKey.Cluster(name), ct).ConfigureAwait(false);
        if (current is null)
        {
            return false;
        }

        await Updates.UpdateAsync(configs, current, c =>
        {
            var changed = false;
            foreach (var hook in c.Webhooks ?? [])
            {
                hook.ClientConfig ??= new Admissionregistrationv1WebhookClientConfig();
                if (hook.ClientConfig.CaBundle is null || !hook.ClientConfig.CaBundle.AsSpan().SequenceEqual(bundle))
                {
                    hook.ClientConfig.CaBundle = bundle;
                    changed = true;
                }
            }

            return changed;
        }, ct: ct).ConfigureAwait(false);
        return true;
    }

    [LoggerMessage(520, LogLevel.Information, "caBundle written into ValidatingWebhookConfiguration/{Name}")]
    private static partial void Injected(ILogger logger, string name);

    [LoggerMessage(521, LogLevel.Warning, "ValidatingWebhookConfiguration/{Name} not found: the webhook is not registered yet; retrying")]
    private static partial void NotFound(ILogger logger, string name);

    [LoggerMessage(522, LogLevel.Warning, "caBundle of ValidatingWebhookConfiguration/{Name} not written; retrying")]
    private static partial void Failed(ILogger logger, Exception exception, string name);
}
