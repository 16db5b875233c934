using k8s;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Runtime;

/// <summary>
/// A running controller: its informers feed keys into a work queue, and N workers call the reconciler, one key at a
/// time per key. Exceptions requeue with per-key backoff; <see cref="TerminalException"/> does not. With leader
/// election, workers run only while this replica holds the Lease. Build one with <see cref="ControllerBuilder"/>.
/// </summary>
public sealed class Controller : BackgroundService
{
    private readonly IReconciler _reconciler;
    private readonly IReadOnlyList<IInformer> _informers;
    private readonly IReadOnlyList<Func<Controller, IDisposable>> _wirings;
    private readonly int _workers;
    private readonly LeaderElectionOptions? _election;
    private readonly Kubernetes _client;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly List<IDisposable> _registrations = [];
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal Controller(
        string name,
        ResourceType primary,
        IReconciler reconciler,
        IReadOnlyList<IInformer> informers,
        IReadOnlyList<Func<Controller, IDisposable>> wirings,
        int workers,
        IRateLimiter<ObjectKey>? rateLimiter,
        LeaderElectionOptions? election,
        Kubernetes client,
        ILoggerFactory loggerFactory,
        TimeProvider time)
    {
        Name = name;
        Primary = primary;
        _reconciler = reconciler;
        _informers = informers;
        _wirings = wirings;
        _workers = workers;
        _election = election;
        _client = client;
        _time = time;
        _logger = loggerFactory.CreateLogger($"{typeof(Controller).FullName}.{name}");
        Queue = new WorkQueue<ObjectKey>(rateLimiter, time);
    }

    /// <summary>The controller's name (logs, metrics).</summary>
    public string Name { get; }

    /// <summary>The kind it reconciles.</summary>
    public ResourceType Primary { get; }

    /// <summary>The work queue (exposed so that callers can enqueue keys from outside events).</summary>
    public WorkQueue<ObjectKey> Queue { get; }

    /// <summary>True while this replica's workers run (always after sync without leader election).</summary>
    public bool IsLeading { get; private set; }

    /// <summary>Completes when the informers have synced and the workers (or the election) have started.</summary>
    public Task Started => _started.Task;

    /// <summary>Queues a key for reconcile.</summary>
    public void Enqueue(ObjectKey key) => Queue.Add(key);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        RuntimeMetrics.TrackQueue(Name, () => Queue.Count);
        try
        {
            foreach (var wire in _wirings)
            {
                _registrations.Add(wire(this));
            }

            foreach (var informer in _informers)
            {
                informer.Start();
            }

            await Task.WhenAll(_informers.Select(i => i.WaitForSyncAsync(stoppingToken))).ConfigureAwait(false);
            Log.ControllerStarting(_logger, Name, _workers, Primary.Kind);
            _started.TrySetResult();

            if (_election is null)
            {
                IsLeading = true;
                await RunWorkersAsync(stoppingToken).ConfigureAwait(false);
            }
            else
            {
                await RunWithElectionAsync(_election, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            IsLeading = false;
            _started.TrySetCanceled(CancellationToken.None);
            Queue.ShutDown();
            foreach (var r in _registrations)
            {
                r.Dispose();
            }

            RuntimeMetrics.UntrackQueue(Name);
            Log.ControllerStopped(_logger, Name);
        }
    }

    private async Task RunWorkersAsync(CancellationToken ct)
    {
        var workers = Enumerable.Range(0, _workers).Select(_ => Task.Run(() => WorkerAsync(ct), CancellationToken.None));
        await Task.WhenAll(workers).ConfigureAwait(false);
    }

    private async Task RunWithElectionAsync(LeaderElectionOptions options, CancellationToken stoppingToken)
    {
        var lease = $"{options.LeaseNamespace}/{options.LeaseName}";
        while (!stoppingToken.IsCancellationRequested)
        {
            using var elector = new LeaderElector(new LeaderElectionConfig(
                new LeaseLock(_client, options.LeaseNamespace, options.LeaseName, options.Identity))
            {
                LeaseDuration = options.LeaseDuration,
                RenewDeadline = options.RenewDeadline,
                RetryPeriod = options.RetryPeriod,
            });
            using var leading = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            Task? workers = null;
            elector.OnStartedLeading += () =>
            {
                Log.StartedLeading(_logger, Name, options.Identity, lease);
                IsLeading = true;
                workers = Task.Run(() => RunWorkersAsync(leading.Token), CancellationToken.None);
            };
            elector.OnStoppedLeading += () =>
            {
                IsLeading = false;
                leading.Cancel();
            };
            elector.OnNewLeader += leader => Log.NewLeader(_logger, Name, lease, leader);
            elector.OnError += e => Log.ElectionError(_logger, e, Name, lease);

            var failed = false;
            try
            {
                await elector.RunUntilLeadershipLostAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                // The elector lets transport errors out of its acquire loop; campaign again after a pause.
                Log.ElectionError(_logger, e, Name, lease);
                failed = true;
            }

            await leading.CancelAsync().ConfigureAwait(false);
            if (workers is not null)
            {
                // Workers finish (their reconciles see the cancellation) before the lease can pass to another replica.
                await workers.ConfigureAwait(false);
                if (stoppingToken.IsCancellationRequested)
                {
                    if (options.ReleaseOnStop)
                    {
                        await ReleaseLeaseAsync(options, lease).ConfigureAwait(false);
                    }
                }
                else
                {
                    Log.StoppedLeading(_logger, Name, options.Identity, lease);
                }
            }

            if (failed)
            {
                try
                {
                    await Task.Delay(options.RetryPeriod, _time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task ReleaseLeaseAsync(LeaderElectionOptions options, string lease)
    {
        try
        {
            using var cts = new CancellationTokenSource(options.RenewDeadline);
            var current = await _client.CoordinationV1.ReadNamespacedLeaseAsync(options.LeaseName, options.LeaseNamespace, cancellationToken: cts.Token).ConfigureAwait(false);
            if (current.Spec?.HolderIdentity != options.Identity)
            {
                return;
            }

            // An empty holder (not a missing one) is what LeaderElector treats as free to take at once.
            current.Spec.HolderIdentity = "";
            await _client.CoordinationV1.ReplaceNamespacedLeaseAsync(current, options.LeaseName, options.LeaseNamespace, cancellationToken: cts.Token).ConfigureAwait(false);
            Log.LeaseReleased(_logger, Name, lease);
        }
        catch (Exception e)
        {
            Log.LeaseReleaseFailed(_logger, e, Name, lease);
        }
    }

    private async Task WorkerAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            ObjectKey key;
            try
            {
                (key, var shutdown) = await Queue.GetAsync(ct).ConfigureAwait(false);
                if (shutdown)
                {
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                await ProcessAsync(key, ct).ConfigureAwait(false);
            }
            finally
            {
                Queue.Done(key);
            }
        }
    }

    /// <summary>Runs one reconcile of <paramref name="key"/> and files the outcome with the queue.</summary>
    internal async Task ProcessAsync(ObjectKey key, CancellationToken ct)
    {
        using var scope = _logger.BeginScope(new Dictionary<string, object?>
        {
            ["Kind"] = Primary.Kind,
            ["Namespace"] = key.Namespace,
            ["Name"] = key.Name,
        });
        var start = _time.GetTimestamp();
        string outcome;
        try
        {
            var result = await _reconciler.ReconcileAsync(key, ct).ConfigureAwait(false);
            Queue.Forget(key);
            if (result.Requeue is { } delay)
            {
                Queue.AddAfter(key, delay);
                outcome = "requeue";
            }
            else
            {
                outcome = "done";
            }

            Log.Reconciled(_logger, Primary.Kind, key, result, _time.GetElapsedTime(start).TotalMilliseconds);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping or lost the lease: whoever leads next must still look at this key.
            Queue.Add(key);
            outcome = "cancelled";
        }
        catch (TerminalException e)
        {
            Queue.Forget(key);
            Log.ReconcileTerminal(_logger, e, Primary.Kind, key);
            outcome = "terminal";
        }
        catch (Exception e)
        {
            Log.ReconcileFailed(_logger, e, Primary.Kind, key, Queue.NumRequeues(key) + 1);
            Queue.AddRateLimited(key);
            outcome = "error";
        }

        var tags = new KeyValuePair<string, object?>[] { new("controller", Name), new("result", outcome) };
        RuntimeMetrics.Reconciles.Add(1, tags);
        RuntimeMetrics.ReconcileSeconds.Record(_time.GetElapsedTime(start).TotalSeconds, new KeyValuePair<string, object?>("controller", Name));
    }

    /// <summary>Logs a map function failure (used by the builder's wiring).</summary>
    internal void MapFailed(Exception e, string kind) => Log.MapFailed(_logger, e, Name, kind);

    /// <inheritdoc />
    public override void Dispose()
    {
        Queue.Dispose();
        base.Dispose();
    }
}
