using k8s;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Runtime;

/// <summary>Registers the runtime and controllers in a host.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Registers the <see cref="SharedInformerFactory"/> (needs a <see cref="Kubernetes"/> client in the container) and a
    /// hosted service that stops the informers after the controllers.
    /// </summary>
    public static IServiceCollection AddKubernetesRuntime(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new SharedInformerFactory(
            sp.GetRequiredService<Kubernetes>(), sp.GetService<ILoggerFactory>(), sp.GetRequiredService<TimeProvider>()));
        // Registered before any controller, so that the host stops it after them (hosted services stop in reverse).
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, InformerLifetime>());
        return services;
    }

    /// <summary>
    /// Registers a controller reconciled by <typeparamref name="TReconciler"/> (resolved from the container) and
    /// described by <paramref name="configure"/>; it runs as a hosted service.
    /// </summary>
    public static IServiceCollection AddController<TReconciler>(this IServiceCollection services, string name, Action<ControllerBuilder> configure)
        where TReconciler : class, IReconciler
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddKubernetesRuntime();
        services.TryAddSingleton<TReconciler>();
        // Not AddHostedService: it de-duplicates by implementation type, and every controller is a Controller.
        services.AddSingleton<IHostedService>(sp =>
        {
            var builder = new ControllerBuilder(name, sp.GetRequiredService<SharedInformerFactory>());
            configure(builder);
            return builder.Build(sp.GetRequiredService<TReconciler>());
        });
        return services;
    }

    private sealed class InformerLifetime(SharedInformerFactory informers) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => informers.StopAsync().WaitAsync(cancellationToken);
    }
}
