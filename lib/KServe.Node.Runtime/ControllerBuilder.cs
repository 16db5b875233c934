using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.Runtime;

/// <summary>
/// Describes a controller: the kind it reconciles (<see cref="For{T}"/>), the children it owns
/// (<see cref="Owns{TChild}"/>), other kinds that map to its keys (<see cref="Watches{TOther}"/>), workers and
/// leader election; <see cref="Build"/> makes the hosted <see cref="Controller"/>.
/// </summary>
public sealed class ControllerBuilder
{
    private readonly string _name;
    private readonly SharedInformerFactory _informers;
    private readonly List<IInformer> _used = [];
    private readonly List<Func<Controller, IDisposable>> _wirings = [];
    private ResourceType? _primary;
    private int _workers = 1;
    private IRateLimiter<ObjectKey>? _rateLimiter;
    private LeaderElectionOptions? _election;

    /// <summary>Starts describing the controller <paramref name="name"/>, using the shared informers of <paramref name="informers"/>.</summary>
    public ControllerBuilder(string name, SharedInformerFactory informers)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(informers);
        _name = name;
        _informers = informers;
    }

    /// <summary>The kind this controller reconciles: each event of it queues its own key.</summary>
    public ControllerBuilder For<T>(Func<ResourceEvent<T>, bool>? predicate = null, InformerOptions? options = null)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        if (_primary is not null)
        {
            throw new InvalidOperationException($"controller {_name} already reconciles {_primary.Kind}");
        }

        var informer = Use<T>(options);
        _primary = informer.Type;
        _wirings.Add(c => informer.AddEventHandler(e =>
        {
            if (predicate is null || predicate(e))
            {
                c.Queue.Add(ObjectKey.From(e.Object));
            }
        }));
        return this;
    }

    /// <summary>
    /// A kind this controller creates: an event of a child queues the key of its controlling owner
    /// (the ownerReference with <c>controller: true</c> whose kind is the primary kind).
    /// </summary>
    public ControllerBuilder Owns<TChild>(Func<ResourceEvent<TChild>, bool>? predicate = null, InformerOptions? options = null)
        where TChild : class, IKubernetesObject<V1ObjectMeta>
    {
        var informer = Use<TChild>(options);
        _wirings.Add(c => informer.AddEventHandler(e =>
        {
            if (predicate is not null && !predicate(e))
            {
                return;
            }

            EnqueueOwner(c, e.Object);
            if (e.OldObject is not null)
            {
                EnqueueOwner(c, e.OldObject);
            }
        }));
        return this;
    }

    /// <summary>
    /// Another kind whose events matter: <paramref name="map"/> turns an object into the keys to reconcile
    /// (for updates, both the old and the new object are mapped).
    /// </summary>
    public ControllerBuilder Watches<TOther>(
        Func<TOther, IEnumerable<ObjectKey>> map, Func<ResourceEvent<TOther>, bool>? predicate = null, InformerOptions? options = null)
        where TOther : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(map);
        var informer = Use<TOther>(options);
        _wirings.Add(c => informer.AddEventHandler(e =>
        {
            if (predicate is not null && !predicate(e))
            {
                return;
            }

            try
            {
                foreach (var key in map(e.Object))
                {
                    c.Queue.Add(key);
                }

                if (e.OldObject is not null)
                {
                    foreach (var key in map(e.OldObject))
                    {
                        c.Queue.Add(key);
                    }
                }
            }
            catch (Exception ex)
            {
                c.MapFailed(ex, informer.Type.Kind);
            }
        }));
        return this;
    }

    /// <summary>Number of concurrent workers (default 1). One key never runs on two workers.</summary>
    public ControllerBuilder WithWorkers(int workers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        _workers = workers;
        return this;
    }

    /// <summary>Replaces the default rate limiter (5 ms → 1000 s per key, 10 qps / burst 100 overall).</summary>
    public ControllerBuilder WithRateLimiter(IRateLimiter<ObjectKey> rateLimiter)
    {
        ArgumentNullException.ThrowIfNull(rateLimiter);
        _rateLimiter = rateLimiter;
        return this;
    }

    /// <summary>Runs workers only while this replica holds the given Lease.</summary>
    public ControllerBuilder WithLeaderElection(LeaderElectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _election = options;
        return this;
    }

    /// <summary>Builds the controller around <paramref name="reconciler"/>.</summary>
    public Controller Build(IReconciler reconciler)
    {
        ArgumentNullException.ThrowIfNull(reconciler);
        var primary = _primary ?? throw new InvalidOperationException($"controller {_name} needs For<T>() before Build()");
        return new Controller(
            _name,
            primary,
            reconciler,
            [.. _used.Distinct()],
            [.. _wirings],
            _workers,
            _rateLimiter,
            _election,
            _informers.Client,
            _informers.LoggerFactory ?? NullLoggerFactory.Instance,
            _informers.TimeProvider);
    }

    private Informer<T> Use<T>(InformerOptions? options)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var informer = _informers.Get<T>(options);
        _used.Add(informer);
        return informer;
    }

    private static void EnqueueOwner(Controller c, IKubernetesObject<V1ObjectMeta> child)
    {
        var refs = child.Metadata?.OwnerReferences;
        if (refs is null)
        {
            return;
        }

        foreach (var owner in refs)
        {
            if (owner.Controller == true && c.Primary.Matches(owner.ApiVersion, owner.Kind))
            {
                c.Queue.Add(new ObjectKey(c.Primary.Namespaced ? child.Metadata!.NamespaceProperty : null, owner.Name));
            }
        }
    }
}
