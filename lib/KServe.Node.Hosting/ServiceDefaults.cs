using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace KServe.Node.Hosting;

/// <summary>
/// Service defaults shared by every daemon: console logging (plain or JSON), systemd integration,
/// health checks, and the Prometheus <c>/metrics</c> endpoint. Each daemon's Program.cs stays short:
/// <c>builder.AddServiceDefaults("node-agent")</c> then <c>app.MapServiceDefaults()</c>.
/// </summary>
public static class ServiceDefaults
{
    /// <summary>Health checks carrying this tag answer <c>/readyz</c>; all others answer only <c>/healthz</c>.</summary>
    public const string ReadyTag = "ready";

    /// <summary>Registers logging, systemd integration, health checks and metrics exposition.</summary>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, string serviceName)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceName);

        builder.Services.AddOptions<LoggingFormatOptions>()
            .Bind(builder.Configuration.GetSection(LoggingFormatOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        var format = builder.Configuration.GetSection(LoggingFormatOptions.Section).Get<LoggingFormatOptions>()
            ?? new LoggingFormatOptions();

        builder.Logging.ClearProviders();
        if (string.Equals(format.Format, "json", StringComparison.OrdinalIgnoreCase))
        {
            builder.Logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
            });
        }
        else
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.IncludeScopes = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
                o.ColorBehavior = LoggerColorBehavior.Disabled;
            });
        }

        // ASP.NET Core logs four Information lines per request; at serving rates that is noise and CPU.
        // Keep its warnings unless the configuration asks for more.
        if (builder.Configuration["Logging:LogLevel:Microsoft.AspNetCore"] is null)
        {
            builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        }

        // Under systemd (Type=notify) this reports readiness and routes logs to the journal format;
        // elsewhere it is a no-op.
        builder.Services.AddSystemd();
        builder.Services.AddHealthChecks();
        builder.Services.AddSingleton(new ServiceIdentity(serviceName));
        return builder;
    }

    /// <summary>
    /// Maps <c>/healthz</c> (liveness: the process serves requests), <c>/readyz</c> (readiness: every check
    /// tagged <see cref="ReadyTag"/> is healthy) and <c>/metrics</c> (Prometheus text format 0.0.4).
    /// </summary>
    public static IEndpointRouteBuilder MapServiceDefaults(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        endpoints.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadyTag) });
        endpoints.MapMetricsEndpoint("/metrics");
        return endpoints;
    }

    /// <summary>
    /// Maps a Prometheus endpoint that writes prometheus-net's default registry followed by every
    /// registered <see cref="IMetricsExposition"/> (families prometheus-net cannot name, such as <c>vllm:*</c>).
    /// </summary>
    public static IEndpointConventionBuilder MapMetricsEndpoint(this IEndpointRouteBuilder endpoints, string pattern)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.MapGet(pattern, async (HttpContext ctx) =>
        {
            var sources = ctx.RequestServices.GetServices<IMetricsExposition>();
            ctx.Response.ContentType = PrometheusText.ContentType;
            await MetricsWriter.WriteAsync(ctx.Response.Body, sources, ctx.RequestAborted).ConfigureAwait(false);
        });
    }

    /// <summary>Binds an options class to a configuration section, validates data annotations at start.</summary>
    public static OptionsBuilder<T> AddValidatedOptions<T>(this IServiceCollection services, IConfiguration configuration, string section)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return services.AddOptions<T>()
            .Bind(configuration.GetSection(section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
    }
}

/// <summary>The daemon's name, for logs and metrics.</summary>
public sealed record ServiceIdentity(string Name);

/// <summary>Log output format: <c>Logging:Output:Format</c> = <c>text</c> (default) or <c>json</c>.</summary>
public sealed class LoggingFormatOptions
{
    public const string Section = "Logging:Output";

    [RegularExpression("^(?i)(text|json)$", ErrorMessage = "Logging:Output:Format must be 'text' or 'json'.")]
    public string Format { get; set; } = "text";
}
