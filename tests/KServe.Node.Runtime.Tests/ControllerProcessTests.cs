using k8s;
using k8s.Models;
using KServe.Node.Runtime;
using Microsoft.Extensions.Time.Testing;

namespace KServe.Node.Runtime.Tests;

/// <summary>
/// The outcome handling of one reconcile (retry, backoff, terminal, requeue), on a fake clock. The controller is
/// built but never started, so no API server is involved.
/// </summary>
public sealed class ControllerProcessTests : IAsyncDisposable
{
    private static readonly ObjectKey Key = new("ns", "a");
    private readonly FakeTimeProvider _clock = new();
    private readonly Kubernetes _client = new(new KubernetesClientConfiguration { Host = "http://127.0.0.1:1" });
    private readonly SharedInformerFactory _informers;

    public ControllerProcessTests() => _informers = new SharedInformerFactory(_client, timeProvider: _clock);

    public async ValueTask DisposeAsync()
    {
        await _informers.DisposeAsync();
        _client.Dispose();
    }

    [Fact]
    public async Task Failing_reconciles_back_off_exponentially_and_success_forgets()
    {
        var reconciler = new ScriptedReconciler(_ => throw new InvalidOperationException("boom"));
        using var controller = Build(reconciler);

        foreach (var expectedMs in new[] { 5, 10, 20, 40, 80 })
        {
            await controller.ProcessAsync(Key, CancellationToken.None);
            Assert.Equal(1, controller.Queue.DelayedCount);
            _clock.Advance(TimeSpan.FromMilliseconds(expectedMs - 1));
            Assert.Equal(0, controller.Queue.Count);
            _clock.Advance(TimeSpan.FromMilliseconds(1));
            Assert.Equal(1, controller.Queue.Count);
            var (key, _) = await controller.Queue.GetAsync();
            controller.Queue.Done(key);
        }

        Assert.Equal(5, controller.Queue.NumRequeues(Key));
        reconciler.Next = _ => ReconcileResult.Done;
        await controller.ProcessAsync(Key, CancellationToken.None);
        Assert.Equal(0, controller.Queue.NumRequeues(Key));
        Assert.Equal(0, controller.Queue.DelayedCount);
        Assert.Equal(0, controller.Queue.Count);
    }

    [Fact]
    public async Task A_terminal_error_is_not_retried()
    {
        var reconciler = new ScriptedReconciler(_ => throw new TerminalException("spec.storageUri is not a URI"));
        using var controller = Build(reconciler);

        await controller.ProcessAsync(Key, CancellationToken.None);
        _clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, controller.Queue.Count);
        Assert.Equal(0, controller.Queue.DelayedCount);
        Assert.Equal(1, reconciler.Calls);
    }

    [Fact]
    public async Task RequeueAfter_schedules_the_key_after_the_delay()
    {
        var reconciler = new ScriptedReconciler(_ => ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(30)));
        using var controller = Build(reconciler);

        await controller.ProcessAsync(Key, CancellationToken.None);
        _clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(0, controller.Queue.Count);
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, controller.Queue.Count);
        Assert.Equal(0, controller.Queue.NumRequeues(Key));
    }

    [Fact]
    public async Task A_reconcile_cancelled_by_shutdown_keeps_its_key_for_the_next_leader()
    {
        using var cts = new CancellationTokenSource();
        var reconciler = new ScriptedReconciler(ct =>
        {
            cts.Cancel();
            ct.ThrowIfCancellationRequested();
            return ReconcileResult.Done;
        });
        using var controller = Build(reconciler);

        await controller.ProcessAsync(Key, cts.Token);
        Assert.Equal(1, controller.Queue.Count);
        Assert.Equal(0, controller.Queue.NumRequeues(Key));
    }

    [Fact]
    public void Builder_requires_a_primary_kind_and_valid_election_timings()
    {
        Assert.Throws<InvalidOperationException>(() => new ControllerBuilder("c", _informers).Build(new ScriptedReconciler(_ => ReconcileResult.Done)));
        Assert.Throws<ArgumentException>(() => new ControllerBuilder("c", _informers).WithLeaderElection(new LeaderElectionOptions
        {
            LeaseNamespace = "ns",
            LeaseName = "l",
            LeaseDuration = TimeSpan.FromSeconds(5),
            RenewDeadline = TimeSpan.FromSeconds(6),
        }));
    }

    private Controller Build(IReconciler reconciler) =>
        new ControllerBuilder("test", _informers).For<V1ConfigMap>().Build(reconciler);

    private sealed class ScriptedReconciler(Func<CancellationToken, ReconcileResult> next) : IReconciler
    {
        public Func<CancellationToken, ReconcileResult> Next { get; set; } = next;

        public int Calls { get; private set; }

        public Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
        {
            Calls++;
            return Task.FromResult(Next(ct));
        }
    }
}
