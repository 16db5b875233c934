using k8s;
using k8s.Models;
using KServe.Node.Hosting.Cli;
using KServe.Node.Runtime;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Admission;

/// <summary>The serving certificate a webhook server presents now; Kestrel asks for it on every handshake.</summary>
public sealed class CertificateSource(WebhookCertificate initial)
{
    private volatile WebhookCertificate _current = initial ?? throw new ArgumentNullException(nameof(initial));

    public WebhookCertificate Current => _current;

    /// <summary>Raised after <see cref="Current"/> changed (a renewal, or another replica's certificate).</summary>
    public event Action<WebhookCertificate>? Changed;

    /// <summary>Serves <paramref name="next"/> from the next handshake on (connections already open keep theirs).</summary>
    public void Set(WebhookCertificate next)
    {
        ArgumentNullException.ThrowIfNull(next);
        if (next.SameAs(_current))
        {
            return;
        }

        // The previous certificate is not disposed: a handshake under way may still be using it.
        _current = next;
        Changed?.Invoke(next);
    }
}

/// <summary>How the shared certificate is kept.</summary>
public sealed record SharedCertificateOptions
{
    /// <summary>The Secret (in the controllers' namespace) that holds the certificate for all replicas.</summary>
    public required ObjectKey Secret { get; init; }

    /// <summary>How often every replica reads the Secret back (to pick up another replica's renewal).</summary>
    public TimeSpan Resync { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>A year: what a serving certificate is valid for unless configured otherwise.</summary>
    public static readonly TimeSpan DefaultValidity = TimeSpan.FromDays(365);

    /// <summary>Validity of a serving certificate; the CA we create lives ten times as long.</summary>
    public TimeSpan Validity { get; init; } = DefaultValidity;

    /// <summary>A serving certificate with less than this left is renewed (under the same CA, so the caBundle stays).</summary>
    public TimeSpan RenewBefore { get; init; } = TimeSpan.FromDays(90);
}

/// <summary>
/// One serving certificate for every replica of a controller, kept in a Secret: the first replica creates it
/// (create-if-absent; the loser of that race reads the winner's), every replica serves it and reads it back every
/// <see cref="SharedCertificateOptions.Resync"/>, and whichever replica first finds it near expiry renews it under the
/// same CA (a replace guarded by resourceVersion, so two renewals cannot both land). The caBundle therefore changes
/// only when the Secret is deleted or replaced by someone else.
/// </summary>
public sealed partial class SharedCertificate(
    Kubernetes client, SharedCertificateOptions options, Func<TimeSpan, WebhookCertificate> create, CertificateSource source,
    TimeProvider time, ILogger<SharedCertificate> logger) : BackgroundService
{
    /// <summary>
    /// Reads the Secret, creating it when absent and renewing a certificate near expiry: the source to serve from. Call
    /// it before the webhook server starts, then run a <see cref="SharedCertificate"/> over the source it returns.
    /// </summary>
    public static async Task<CertificateSource> LoadAsync(Kubernetes client, SharedCertificateOptions options,
        Func<TimeSpan, WebhookCertificate> create, TimeProvider time, ILogger logger, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        return new CertificateSource(await GetOrCreateAsync(new ResourceClient<V1Secret>(client), options, create, time, logger, ct).ConfigureAwait(false));
    }

    /// <summary>
    /// <see cref="LoadAsync"/> at process start: an API error (no RBAC, no namespace, no API server) is a start-up
    /// error that names the Secret and what the controller needs.
    /// </summary>
    /// <exception cref="StartupException">The Secret could not be read or created.</exception>
    public static CertificateSource Load(Kubernetes client, SharedCertificateOptions options,
        Func<TimeSpan, WebhookCertificate> create, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            return LoadAsync(client, options, create, time, logger, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is KubernetesApiException or HttpRequestException)
        {
            throw new StartupException($"the webhook certificate Secret {options.Secret} could not be read or created ({e.Message}); "
                + "the controller needs get and update on it, and create on Secrets, in its namespace", e);
        }
    }

    /// <summary>The certificate the Secret holds now (created or renewed first when needed).</summary>
    internal static async Task<WebhookCertificate> GetOrCreateAsync(ResourceClient<V1Secret> secrets, SharedCertificateOptions options,
        Func<TimeSpan, WebhookCertificate> create, TimeProvider time, ILogger logger, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(secrets);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(create);
        ArgumentNullException.ThrowIfNull(time);
        for (var attempt = 0; ; attempt++)
        {
            var secret = await secrets.GetAsync(options.Secret, ct).ConfigureAwait(false);
            try
            {
                if (secret is null)
                {
                    var fresh = create(options.Validity);
                    await secrets.CreateAsync(ToSecret(options, fresh, null), ct).ConfigureAwait(false);
                    Created(logger, options.Secret.ToString());
                    return fresh;
                }

                var held = WebhookCertificate.FromSecretData(secret.Data ?? new Dictionary<string, byte[]>());
                if (held.NotAfter - time.GetUtcNow() > options.RenewBefore)
                {
                    return held;
                }

                // Near expiry: renew under the same CA; a certificate we cannot renew (no CA key) is replaced whole.
                var renewed = held.Renew(time, options.Validity) ?? create(options.Validity);
                await secrets.ReplaceAsync(ToSecret(options, renewed, secret), ct).ConfigureAwait(false);
                Renewed(logger, options.Secret.ToString(), held.NotAfter, renewed.NotAfter);
                return renewed;
            }
            catch (KubernetesApiException e) when ((e.IsAlreadyExists || e.IsConflict) && attempt < 5)
            {
                // Another replica created or renewed it meanwhile: read theirs.
            }
            catch (FormatException e) when (secret is not null && attempt < 5)
            {
                // Not a certificate we can serve (edited by hand, half-written by something else): replace it.
                Unreadable(logger, options.Secret.ToString(), e.Message);
                var fresh = create(options.Validity);
                try
                {
                    await secrets.ReplaceAsync(ToSecret(options, fresh, secret), ct).ConfigureAwait(false);
                    return fresh;
                }
                catch (KubernetesApiException c) when (c.IsConflict)
                {
                    // Someone wrote it meanwhile: read again.
                }
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var secrets = new ResourceClient<V1Secret>(client);
        Loaded(logger, options.Secret.ToString(), source.Current.NotAfter);
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(options.Resync, time, stoppingToken).ConfigureAwait(false);
            try
            {
                source.Set(await GetOrCreateAsync(secrets, options, create, time, logger, stoppingToken).ConfigureAwait(false));
            }
            catch (Exception e) when (e is KubernetesApiException or HttpRequestException or FormatException)
            {
                // The certificate being served stays; the next period tries again.
                ReadFailed(logger, e, options.Secret.ToString());
            }
        }
    }

    private static V1Secret ToSecret(SharedCertificateOptions options, WebhookCertificate certificate, V1Secret? current) => new()
    {
        ApiVersion = "v1",
        Kind = "Secret",
        Type = "kubernetes.io/tls",
        Metadata = new V1ObjectMeta
        {
            Name = options.Secret.Name,
            NamespaceProperty = options.Secret.Namespace,
            ResourceVersion = current?.Metadata?.ResourceVersion,
            Labels = current?.Metadata?.Labels ?? new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "kserve-node" },
        },
        Data = certificate.ToSecretData(),
    };

    [LoggerMessage(530, LogLevel.Information, "Webhook serving certificate from Secret {Secret}, valid until {NotAfter:u}")]
    private static partial void Loaded(ILogger logger, string secret, DateTimeOffset notAfter);

    [LoggerMessage(531, LogLevel.Information, "Created the webhook certificate Secret {Secret} (no replica had made one)")]
    private static partial void Created(ILogger logger, string secret);

    [LoggerMessage(532, LogLevel.Information, "Renewed the webhook serving certificate in Secret {Secret} (valid until {OldNotAfter:u}, now until {NotAfter:u}); same CA")]
    private static partial void Renewed(ILogger logger, string secret, DateTimeOffset oldNotAfter, DateTimeOffset notAfter);

    [LoggerMessage(533, LogLevel.Warning, "The webhook certificate Secret {Secret} does not hold a usable certificate ({Reason}); replacing it")]
    private static partial void Unreadable(ILogger logger, string secret, string reason);

    [LoggerMessage(534, LogLevel.Warning, "Could not read the webhook certificate Secret {Secret}; serving the current certificate and retrying")]
    private static partial void ReadFailed(ILogger logger, Exception exception, string secret);
}
