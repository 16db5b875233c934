using k8s;
using k8s.Models;
using KServe.Node.Runtime;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Admission;

/// <summary>
/// Writes the CA of the served certificate into the <c>caBundle</c> of every webhook of the named
/// ValidatingWebhookConfigurations: at start, again whenever the certificate changes, and every
/// <paramref name="retry"/> while a configuration is not there yet. With a shared certificate every replica writes
/// the same bundle, so their writes agree. cert-manager's CA injector can do this instead: then the list is empty.
/// </summary>
public sealed partial class CaBundlePatcher(
    Kubernetes client, IReadOnlyList<string> configurations, CertificateSource source, TimeSpan retry, TimeProvider time,
    ILogger<CaBundlePatcher> logger) : BackgroundService
{
    private readonly ResourceClient<V1ValidatingWebhookConfiguration> _configs = new(client);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _changed = new(0);

    /// <summary>Completes once every configuration holds the bundle of the certificate served at start.</summary>
    public Task Done => _done.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        source.Changed += OnChanged;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var pending = 0;
                var bundle = source.Current.CaBundlePem;
                foreach (var name in configurations)
                {
                    if (!await TryPatchAsync(name, bundle, stoppingToken).ConfigureAwait(false))
                    {
                        pending++;
                    }
                }

                if (pending == 0)
                {
                    _done.TrySetResult();
                    // Wait for the next certificate.
                    await _changed.WaitAsync(stoppingToken).ConfigureAwait(false);
                }
                else
                {
                    // A configuration not there yet (or a failed write): try again after a while, or on a new certificate.
                    await WaitForChangeAsync(retry, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            source.Changed -= OnChanged;
        }
    }

    private void OnChanged(WebhookCertificate _) => _changed.Release();

    private async Task WaitForChangeAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var timer = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timer.Token);
        try
        {
            await _changed.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The retry period passed.
        }
    }

    /// <summary>Writes the bundle into one configuration; false when it does not exist (yet) or the write failed.</summary>
    private async Task<bool> TryPatchAsync(string name, byte[] bundle, CancellationToken ct)
    {
        try
        {
            var current = await _configs.GetAsync(ObjectKey.Cluster(name), ct).ConfigureAwait(false);
            if (current is null)
            {
                NotFound(logger, name);
                return false;
            }

            await Updates.UpdateAsync(_configs, current, c =>
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
            Patched(logger, name);
            return true;
        }
        catch (Exception e) when (e is KubernetesApiException or HttpRequestException)
        {
            Failed(logger, e, name);
            return false;
        }
    }

    public override void Dispose()
    {
        _changed.Dispose();
        base.Dispose();
    }

    [LoggerMessage(520, LogLevel.Information, "caBundle written into ValidatingWebhookConfiguration/{Name}")]
    private static partial void Patched(ILogger logger, string name);

    [LoggerMessage(521, LogLevel.Warning, "ValidatingWebhookConfiguration/{Name} not found: the webhook is not registered yet; retrying")]
    private static partial void NotFound(ILogger logger, string name);

    [LoggerMessage(522, LogLevel.Warning, "caBundle of ValidatingWebhookConfiguration/{Name} not written; retrying")]
    private static partial void Failed(ILogger logger, Exception exception, string name);
}
