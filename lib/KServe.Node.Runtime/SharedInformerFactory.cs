using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Runtime;

/// <summary>
/// One informer per (type, namespace, selectors) in a process, shared by every controller that asks for it, so that
/// each kind is listed and watched once.
/// </summary>
public sealed class SharedInformerFactory : IAsyncDisposable
{
    private readonly Dictionary<(Type, string?, string?, string?), IInformer> _informers = [];
    private readonly Lock _lock = new();
    private readonly ILoggerFactory? _loggerFactory;
    private readonly TimeProvider _time;

    public SharedInformerFactory(Kubernetes client, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        Client = client;
        _loggerFactory = loggerFactory;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The Kubernetes client the informers use.</summary>
    public Kubernetes Client { get; }

    /// <summary>The clock given to informers and controllers.</summary>
    public TimeProvider TimeProvider => _time;

    /// <summary>The logger factory given to informers and controllers, if any.</summary>
    public ILoggerFactory? LoggerFactory => _loggerFactory;

    /// <summary>
    /// The shared informer of <typeparamref name="T"/> for these options (created on first use, not started: controllers
    /// start the informers they use; call <see cref="IInformer.Start"/> to use one directly).
    /// </summary>
    public Informer<T> Get<T>(InformerOptions? options = null)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        options ??= new InformerOptions();
        var key = (typeof(T), options.Namespace, options.LabelSelector, options.FieldSelector);
        lock (_lock)
        {
            if (!_informers.TryGetValue(key, out var informer))
            {
                informer = new Informer<T>(new ResourceClient<T>(Client), options, _loggerFactory, _time);
                _informers[key] = informer;
            }

            return (Informer<T>)informer;
        }
    }

    /// <summary>A REST client for <typeparamref name="T"/> on the same connection.</summary>
    public ResourceClient<T> ClientFor<T>()
        where T : class, IKubernetesObject<V1ObjectMeta> => new(Client);

    /// <summary>Stops every informer.</summary>
    public async Task StopAsync()
    {
        IInformer[] informers;
        lock (_lock)
        {
            informers = [.. _informers.Values];
        }

        await Task.WhenAll(informers.Select(i => i.StopAsync())).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        IInformer[] informers;
        lock (_lock)
        {
            informers = [.. _informers.Values];
            _informers.Clear();
        }

        foreach (var informer in informers)
        {
            await informer.DisposeAsync().ConfigureAwait(false);
        }
    }
}
