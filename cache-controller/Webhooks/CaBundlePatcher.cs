using k8s;
using k8s.Autorest;
using KServe.Node.CacheController.Controllers;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KServe.Node.CacheController.Webhooks;

/// <summary>
/// Writes the generated CA into every webhook of the configured ValidatingWebhookConfigurations at start, so that the
/// API server trusts the serving certificate (cert-manager can do this instead: then the list is left empty).
/// </summary>
internal sealed class CaBundlePatcher(Kubernetes client, WebhookCertificate certificate, IOptions<CacheControllerOptions> options,
    ILogger<CaBundlePatcher> logger) : BackgroundService
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once every configuration was patched or found missing.</summary>
    public Task Done => _done.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            foreach (var name in options.Value.WebhookConfigurations)
            {
                await PatchAsync(name, stoppingToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _done.TrySetResult();
        }
    }

    internal async Task PatchAsync(string name, CancellationToken ct)
    {
        var bundle = certificate.CaBundlePem;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                var config = await client.AdmissionregistrationV1.ReadValidatingWebhookConfigurationAsync(name, cancellationToken: ct).ConfigureAwait(false);
                var changed = false;
                foreach (var webhook in config.Webhooks ?? [])
                {
                    webhook.ClientConfig ??= new();
                    if (webhook.ClientConfig.CaBundle is null || !webhook.ClientConfig.CaBundle.AsSpan().SequenceEqual(bundle))
                    {
                        webhook.ClientConfig.CaBundle = bundle;
                        changed = true;
                    }
                }

                if (changed)
                {
                    await client.AdmissionregistrationV1.ReplaceValidatingWebhookConfigurationAsync(config, name, cancellationToken: ct).ConfigureAwait(false);
                }

                Log.CaBundlePatched(logger, name);
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                Log.CaBundleNotPatched(logger, name, "not found");
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict)
            {
                // Someone else wrote it meanwhile: read again.
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.CaBundleNotPatched(logger, name, e.Message);
                return;
            }
        }
    }
}
