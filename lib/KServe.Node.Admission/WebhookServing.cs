using k8s;
using KServe.Node.Runtime;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.Admission;

/// <summary>Where a controller's webhook serving certificate comes from: its flags.</summary>
public sealed record WebhookCertificateSettings
{
    /// <summary>The Service in front of the webhook server (the certificate's DNS names).</summary>
    public required string ServiceName { get; init; }

    /// <summary>The controllers' namespace: the Service's and the Secret's.</summary>
    public required string Namespace { get; init; }

    /// <summary>Extra DNS names or IP addresses of a certificate we create.</summary>
    public IReadOnlyList<string> ExtraNames { get; init; } = [];

    /// <summary>A mounted PEM certificate and key (cert-manager) to serve instead.</summary>
    public string? CertFile { get; init; }

    public string? KeyFile { get; init; }

    /// <summary>The Secret every replica shares; empty: a certificate of this process only.</summary>
    public string? SecretName { get; init; }

    public int ResyncSeconds { get; init; } = 60;
}

/// <summary>How both controllers serve their webhooks over HTTPS.</summary>
public static class WebhookServing
{
    /// <summary>
    /// The serving certificate: mounted files (cert-manager), the Secret every replica shares (read or created now,
    /// before the webhook server starts, so that its first handshake already presents it; a <see cref="SharedCertificate"/>
    /// keeps it current), or, with no Secret named, one of this process only.
    /// </summary>
    /// <exception cref="Hosting.Cli.StartupException">The shared Secret could not be read or created.</exception>
    public static CertificateSource AddWebhookCertificate(this IServiceCollection services, Kubernetes client, WebhookCertificateSettings settings)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(settings);
        if (!string.IsNullOrEmpty(settings.CertFile) && !string.IsNullOrEmpty(settings.KeyFile))
        {
            return new CertificateSource(WebhookCertificate.FromFiles(settings.CertFile, settings.KeyFile));
        }

        WebhookCertificate Create(TimeSpan validity) =>
            WebhookCertificate.Create(settings.ServiceName, settings.Namespace, settings.ExtraNames, TimeProvider.System, validity);
        if (string.IsNullOrEmpty(settings.SecretName))
        {
            return new CertificateSource(Create(SharedCertificateOptions.DefaultValidity));
        }

        var shared = new SharedCertificateOptions
        {
            Secret = new ObjectKey(settings.Namespace, settings.SecretName),
            Resync = TimeSpan.FromSeconds(settings.ResyncSeconds),
        };
        var source = SharedCertificate.Load(client, shared, Create, TimeProvider.System, NullLogger.Instance);
        services.AddHostedService(sp => new SharedCertificate(client, shared, Create, source,
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<SharedCertificate>>()));
        return source;
    }

    /// <summary>HTTPS with the certificate <paramref name="source"/> holds at each handshake: a renewed or another replica's one is served without a restart.</summary>
    public static ListenOptions UseHttps(this ListenOptions listen, CertificateSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return listen.UseHttps(https => https.ServerCertificateSelector = (_, _) => source.Current.Serving);
    }
}
