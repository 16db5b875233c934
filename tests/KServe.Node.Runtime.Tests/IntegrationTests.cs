using System.Collections.Concurrent;
using k8s;
using k8s.Models;
using KServe.Node.Runtime;
using KServe.Node.TestKit.ApiServer;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Runtime.Tests;

/// <summary>
/// The runtime against the test API server over real HTTP: informers, controllers, leader election, helpers.
/// </summary>
public sealed class IntegrationTests : IAsyncLifetime
{
    private static readonly InformerOptions Inputs = new() { LabelSelector = "role=input", MinBackoff = TimeSpan.FromMilliseconds(50), MaxBackoff = TimeSpan.FromSeconds(1) };
    private static readonly InformerOptions Outputs = new() { LabelSelector = "role=output", MinBackoff = TimeSpan.FromMilliseconds(50), MaxBackoff = TimeSpan.FromSeconds(1) };
    private readonly ILoggerFactory _logs = TestOutputLoggerProvider.Factory();
    private readonly List<IAsyncDisposable> _cleanup = [];
    private TestApiServer _server = null!;
    private string _ns = "";

    public async ValueTask InitializeAsync()
    {
        _server = await TestApiServer.StartAsync();
        _ns = "t" + Guid.NewGuid().ToString("N")[..8];
        using var admin = _server.CreateClient("admin");
        await new ResourceClient<V1Namespace>(admin).CreateAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = _ns } });
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _cleanup.Count - 1; i >= 0; i--)
        {
            await _cleanup[i].DisposeAsync();
        }

        await _server.DisposeAsync();
        _logs.Dispose();
    }

    [Fact]
    public async Task Informer_lists_then_follows_the_watch_and_keeps_its_indexes()
    {
        var client = Client("informer");
        var configMaps = new ResourceClient<V1ConfigMap>(client);
        await configMaps.CreateAsync(Input("a", "1", app: "x"));
        await configMaps.CreateAsync(Input("b", "1", app: "y"));

        var informer = Informers(client).Get<V1ConfigMap>(Inputs);
        informer.AddIndex("by-data", o => o.Data?.Values ?? []);
        informer.Start();
        await informer.WaitForSyncAsync().WaitAsync(Until.Timeout);
        Assert.Equal(2, informer.Count);

        await configMaps.CreateAsync(Input("c", "2", app: "x"));
        await Until.TrueAsync(informer, () => informer.ByLabel("app", "x").Count == 2, "c in the app=x label index");
        Assert.Single(informer.ByIndex("by-data", "2"));
        Assert.Equal(3, informer.List(_ns).Count);
        Assert.Empty(informer.List("elsewhere"));

        await configMaps.DeleteAsync(new ObjectKey(_ns, "a"));
        await Until.TrueAsync(informer, () => informer.Get(new ObjectKey(_ns, "a")) is null, "a deleted from the cache");
        Assert.Single(informer.ByLabel("app", "x"));
    }

    [Fact]
    public async Task An_informer_with_a_field_selector_sees_only_its_object()
    {
        var client = Client("agent");
        var configMaps = new ResourceClient<V1ConfigMap>(client);
        await configMaps.CreateAsync(Input("node-1", "1"));
        await configMaps.CreateAsync(Input("node-2", "1"));

        var informer = Informers(client).Get<V1ConfigMap>(new InformerOptions { Namespace = _ns, FieldSelector = "metadata.name=node-1" });
        informer.Start();
        await informer.WaitForSyncAsync().WaitAsync(Until.Timeout);
        await configMaps.PatchAsync(new ObjectKey(_ns, "node-2"), PatchKind.Merge, """{"data":{"v":"2"}}""");
        await configMaps.PatchAsync(new ObjectKey(_ns, "node-1"), PatchKind.Merge, """{"data":{"v":"2"}}""");

        await Until.TrueAsync(informer, () => informer.Get(new ObjectKey(_ns, "node-1"))?.Data["v"] == "2", "node-1 patched");
        Assert.Equal(["node-1"], informer.List().Select(o => o.Metadata.Name));
    }

    [Fact]
    public async Task A_controller_converges_after_its_watches_are_dropped()
    {
        var (controller, _, outputs) = await StartCopyControllerAsync("host");
        var configMaps = new ResourceClient<V1ConfigMap>(Client("user"));
        await configMaps.CreateAsync(Input("a", "1"));
        await WaitCopiedAsync(outputs, "a", "1");

        for (var round = 2; round <= 4; round++)
        {
            _server.DropWatches();
            await configMaps.PatchAsync(new ObjectKey(_ns, "a"), PatchKind.Merge, DataPatch($"{round}"));
            await configMaps.CreateAsync(Input($"b{round}", $"{round}"));
            await WaitCopiedAsync(outputs, "a", $"{round}");
            await WaitCopiedAsync(outputs, $"b{round}", $"{round}");
        }

        Assert.True(controller.IsLeading);
    }

    [Fact]
    public async Task A_controller_converges_after_410_Gone_by_relisting()
    {
        // A reconnect delay long enough that the changes below and the compaction happen while the watch is down.
        var (_, inputs, outputs, _) = await StartCopyControllerWithReconcilerAsync("host", minBackoff: TimeSpan.FromSeconds(3));
        var user = new ResourceClient<V1ConfigMap>(Client("user"));
        await user.CreateAsync(Input("a", "1"));
        await user.CreateAsync(Input("gone", "1"));
        await WaitCopiedAsync(outputs, "a", "1");

        // Changes made while the watch is down, then history compacted: the rewatch from the old
        // resourceVersion gets 410 Gone and the informer must relist to see them (a delete included).
        var listsBefore = Lists("host");
        _server.DropWatches();
        await user.PatchAsync(new ObjectKey(_ns, "a"), PatchKind.Merge, """{"data":{"v":"2"}}""");
        await user.DeleteAsync(new ObjectKey(_ns, "gone"));
        await user.CreateAsync(Input("new", "3"));
        _server.Compact();

        await WaitCopiedAsync(outputs, "a", "2");
        await WaitCopiedAsync(outputs, "new", "3");
        await Until.TrueAsync(inputs, () => inputs.Get(new ObjectKey(_ns, "gone")) is null, "the deleted input leaves the cache");
        Assert.True(Lists("host") > listsBefore, "the informers relisted after 410 Gone");
    }

    [Fact]
    public async Task A_controller_converges_against_a_conflicting_writer()
    {
        var (_, _, outputs) = await StartCopyControllerAsync("host");
        var user = new ResourceClient<V1ConfigMap>(Client("user"));
        var rogue = new ResourceClient<V1ConfigMap>(Client("rogue"));
        await user.CreateAsync(Input("a", "1"));
        await WaitCopiedAsync(outputs, "a", "1");

        // Another writer keeps overwriting the controller's output (stale resourceVersions make both sides hit
        // 409 Conflict); the controller re-reads and wins once the writer stops.
        for (var i = 0; i < 20; i++)
        {
            var outKey = new ObjectKey(_ns, "a-out");
            var current = await rogue.GetAsync(outKey);
            Assert.NotNull(current);
            current.Data["v"] = $"rogue-{i}";
            try
            {
                await rogue.ReplaceAsync(current);
            }
            catch (KubernetesApiException e) when (e.IsConflict)
            {
            }

            if (i == 10)
            {
                await user.PatchAsync(new ObjectKey(_ns, "a"), PatchKind.Merge, """{"data":{"v":"final"}}""");
            }
        }

        await WaitCopiedAsync(outputs, "a", "final");
    }

    [Fact]
    public async Task Duplicate_events_collapse_into_one_reconcile()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (controller, inputs, outputs, reconciler) = await StartCopyControllerWithReconcilerAsync("host", workers: 1, owns: false, hook: async (key, call) =>
        {
            if (key.Name == "a" && call == 1)
            {
                blocked.TrySetResult();
                await gate.Task;
            }
        });
        var user = new ResourceClient<V1ConfigMap>(Client("user"));
        await user.CreateAsync(Input("a", "0"));
        await blocked.Task.WaitAsync(Until.Timeout);

        // Ten updates while the first reconcile of "a" is in progress: the key is queued once.
        for (var i = 1; i <= 10; i++)
        {
            await user.PatchAsync(new ObjectKey(_ns, "a"), PatchKind.Merge, DataPatch($"{i}"));
        }

        await Until.TrueAsync(inputs, () => inputs.Get(new ObjectKey(_ns, "a"))?.Data["v"] == "10", "all ten updates seen");
        Assert.Equal(1, reconciler.Calls[new ObjectKey(_ns, "a")]);
        gate.SetResult();

        await WaitCopiedAsync(outputs, "a", "10");

        // The first call read the cache after the gate, so it may already have copied "10"; the key was marked dirty while
        // it ran, so it is reconciled exactly once more after that call returns.
        var deadline = DateTime.UtcNow + Until.Timeout;
        while (reconciler.Calls[new ObjectKey(_ns, "a")] < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        // A barrier: with one worker and a FIFO queue, once "z" (created last) is reconciled, nothing of "a" is pending.
        await user.CreateAsync(Input("z", "1"));
        await WaitCopiedAsync(outputs, "z", "1");
        Assert.Equal(2, reconciler.Calls[new ObjectKey(_ns, "a")]);
        Assert.Equal(0, controller.Queue.Count);
    }

    [Fact]
    public async Task A_failing_reconcile_is_retried_with_backoff_until_it_succeeds()
    {
        var (controller, _, outputs, reconciler) = await StartCopyControllerWithReconcilerAsync("host", workers: 1, owns: false, hook: (key, call) =>
            key.Name == "a" && call <= 4 ? throw new InvalidOperationException($"failure {call}") : Task.CompletedTask);
        var user = new ResourceClient<V1ConfigMap>(Client("user"));
        await user.CreateAsync(Input("a", "1"));

        await WaitCopiedAsync(outputs, "a", "1");
        Assert.Equal(5, reconciler.Calls[new ObjectKey(_ns, "a")]);

        // A barrier (one worker, FIFO): once "z" is reconciled, the success of "a" has been filed and forgotten.
        await user.CreateAsync(Input("z", "1"));
        await WaitCopiedAsync(outputs, "z", "1");
        Assert.Equal(0, controller.Queue.NumRequeues(new ObjectKey(_ns, "a")));
    }

    [Fact]
    public async Task With_leader_election_exactly_one_host_reconciles_and_the_other_takes_over()
    {
        var election = new LeaderElectionOptions
        {
            LeaseNamespace = _ns,
            LeaseName = "copy-controller",
            // Long enough that a loaded machine does not miss renewals; a clean stop releases the lease anyway.
            LeaseDuration = TimeSpan.FromSeconds(8),
            RenewDeadline = TimeSpan.FromSeconds(6),
            RetryPeriod = TimeSpan.FromSeconds(1),
        };
        var hostA = await StartCopyControllerWithReconcilerAsync("host-a", election: election with { Identity = "host-a" });
        var hostB = await StartCopyControllerWithReconcilerAsync("host-b", election: election with { Identity = "host-b" });
        var user = new ResourceClient<V1ConfigMap>(Client("user"));
        for (var i = 0; i < 5; i++)
        {
            await user.CreateAsync(Input($"a{i}", "1"));
        }

        var outputs = hostA.Outputs;
        for (var i = 0; i < 5; i++)
        {
            await WaitCopiedAsync(outputs, $"a{i}", "1");
        }

        // The leader is whoever wrote the outputs (from the server's log, not from the hosts' own view).
        var firstWriter = Writes().First().Request.UserAgent;
        var (leader, follower) = firstWriter == "host-a" ? (hostA, hostB) : (hostB, hostA);
        Assert.False(follower.Controller.IsLeading);
        await leader.Controller.StopAsync(CancellationToken.None);
        var stoppedAt = _server.Requests.Count;

        for (var i = 0; i < 5; i++)
        {
            await user.CreateAsync(Input($"b{i}", "2"));
        }

        // Generous: the takeover waits for the released (or expired) lease.
        for (var i = 0; i < 5; i++)
        {
            await WaitCopiedAsync(follower.Outputs, $"b{i}", "2", TimeSpan.FromSeconds(60));
        }

        Assert.True(follower.Controller.IsLeading);

        // From the server's log: config map writes came from one host, then (after it stopped) only from the other.
        var writes = Writes();
        var leaderName = leader == hostA ? "host-a" : "host-b";
        var followerName = leader == hostA ? "host-b" : "host-a";
        Assert.Contains(writes, w => w.Request.UserAgent == leaderName);
        Assert.Contains(writes, w => w.Request.UserAgent == followerName);
        Assert.All(writes.Where(w => w.Index < stoppedAt), w => Assert.Equal(leaderName, w.Request.UserAgent));
        Assert.All(writes.Where(w => w.Index >= stoppedAt), w => Assert.Equal(followerName, w.Request.UserAgent));
    }

    [Fact]
    public async Task Status_is_written_only_when_it_changed_and_conflicts_are_retried()
    {
        await _server.ApplyCrdsFromDirectoryAsync(Path.Combine(AppContext.BaseDirectory, "crds"));
        var client = Client("status");
        var widgets = new ResourceClient<Widget>(client);
        var created = await widgets.CreateAsync(new Widget { Metadata = new V1ObjectMeta { Name = "w", NamespaceProperty = _ns }, Spec = new WidgetSpec { Size = 3 } });

        var written = await StatusWriter.UpdateStatusIfChangedAsync(widgets, created, w => w.Status = new WidgetStatus { ObservedSize = 3, Phase = "Ready" });
        Assert.NotNull(written);
        var statusWrites = StatusWrites();
        var again = await StatusWriter.UpdateStatusIfChangedAsync(widgets, written, w => w.Status = new WidgetStatus { ObservedSize = 3, Phase = "Ready" });
        Assert.Same(written, again);
        Assert.Equal(statusWrites, StatusWrites());

        // Someone else changes the object: our copy is stale, the write conflicts, re-reads and lands.
        await widgets.PatchAsync(new ObjectKey(_ns, "w"), PatchKind.Merge, """{"spec":{"size":4}}""");
        var updated = await StatusWriter.UpdateStatusIfChangedAsync(widgets, written, w => w.Status = new WidgetStatus { ObservedSize = w.Spec.Size, Phase = "Resized" });
        Assert.True(StatusWrites() >= statusWrites + 2, "the stale write was refused and retried");
        Assert.Equal(4, updated!.Status!.ObservedSize);
        Assert.Equal(4, (await widgets.GetAsync(new ObjectKey(_ns, "w")))!.Status!.ObservedSize);
    }

    [Fact]
    public async Task Finalizers_are_added_once_and_removed()
    {
        await _server.ApplyCrdsFromDirectoryAsync(Path.Combine(AppContext.BaseDirectory, "crds"));
        var widgets = new ResourceClient<Widget>(Client("finalizers"));
        var w = await widgets.CreateAsync(new Widget { Metadata = new V1ObjectMeta { Name = "w", NamespaceProperty = _ns } });

        w = await Finalizers.AddAsync(widgets, w, "test.kserve-node.io/cleanup");
        w = await Finalizers.AddAsync(widgets, w!, "test.kserve-node.io/cleanup");
        Assert.Equal(["test.kserve-node.io/cleanup"], (await widgets.GetAsync(new ObjectKey(_ns, "w")))!.Metadata.Finalizers);

        w = await Finalizers.RemoveAsync(widgets, w!, "test.kserve-node.io/cleanup");
        Assert.Empty((await widgets.GetAsync(new ObjectKey(_ns, "w")))!.Metadata.Finalizers ?? []);
    }

    [Fact]
    public async Task Repeated_events_bump_the_count_of_one_Event()
    {
        var client = Client("events");
        var configMaps = new ResourceClient<V1ConfigMap>(client);
        var cm = await configMaps.CreateAsync(Input("a", "1"));
        var recorder = new EventRecorder(client, "runtime-tests");

        await recorder.NormalAsync(cm, "Copied", "copied a");
        await recorder.NormalAsync(cm, "Copied", "copied a");
        await recorder.WarningAsync(cm, "CopyFailed", "disk full");

        var events = (await new ResourceClient<Corev1Event>(client).ListAsync(_ns)).Items;
        var copied = Assert.Single(events, e => e.Reason == "Copied");
        Assert.Equal(2, copied.Count);
        Assert.Equal("ConfigMap", copied.InvolvedObject.Kind);
        Assert.Equal("a", copied.InvolvedObject.Name);
        Assert.Single(events, e => e.Reason == "CopyFailed" && e.Type == "Warning");
    }

    private static string DataPatch(string value) => System.Text.Json.JsonSerializer.Serialize(new { data = new { v = value } });

    private Kubernetes Client(string userAgent) => _server.CreateClient(userAgent);

    private SharedInformerFactory Informers(Kubernetes client)
    {
        var informers = new SharedInformerFactory(client, _logs);
        _cleanup.Add(informers);
        return informers;
    }

    private V1ConfigMap Input(string name, string value, string? app = null)
    {
        var labels = new Dictionary<string, string> { ["role"] = "input" };
        if (app is not null)
        {
            labels["app"] = app;
        }

        return new V1ConfigMap
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = _ns, Labels = labels },
            Data = new Dictionary<string, string> { ["v"] = value },
        };
    }

    private int Lists(string userAgent) =>
        _server.Requests.Count(r => r.Verb == "list" && r.Resource == "configmaps" && r.UserAgent == userAgent);

    private List<(RecordedRequest Request, int Index)> Writes() =>
        [.. _server.Requests
            .Select((r, index) => (r, index))
            .Where(x => x.r.Resource == "configmaps" && x.r.Verb is "create" or "update" or "patch" && x.r.UserAgent is "host-a" or "host-b")];

    private int StatusWrites() =>
        _server.Requests.Count(r => r.Resource == "widgets" && r.Subresource == "status" && r.Verb is "update" or "patch");

    private static Task WaitCopiedAsync(Informer<V1ConfigMap> outputs, string input, string value, TimeSpan? timeout = null) =>
        Until.TrueAsync(outputs, () => outputs.List().Any(o => o.Metadata.Name == input + "-out" && o.Data is { } d && d.TryGetValue("v", out var v) && v == value),
            $"{input}-out holds v={value}", timeout);

    private async Task<(Controller Controller, Informer<V1ConfigMap> Inputs, Informer<V1ConfigMap> Outputs)> StartCopyControllerAsync(string host)
    {
        var started = await StartCopyControllerWithReconcilerAsync(host);
        return (started.Controller, started.Inputs, started.Outputs);
    }

    private async Task<(Controller Controller, Informer<V1ConfigMap> Inputs, Informer<V1ConfigMap> Outputs, CopyReconciler Reconciler)> StartCopyControllerWithReconcilerAsync(
        string host, int workers = 2, Func<ObjectKey, int, Task>? hook = null, LeaderElectionOptions? election = null, bool owns = true, TimeSpan? minBackoff = null)
    {
        var informers = Informers(Client(host));
        var inputs = Inputs with { Namespace = _ns, MinBackoff = minBackoff ?? Inputs.MinBackoff, MaxBackoff = minBackoff * 2 ?? Inputs.MaxBackoff };
        var outputs = Outputs with { Namespace = _ns, MinBackoff = minBackoff ?? Outputs.MinBackoff, MaxBackoff = minBackoff * 2 ?? Outputs.MaxBackoff };
        var reconciler = new CopyReconciler(informers, inputs) { Hook = hook };
        var builder = new ControllerBuilder("copy", informers)
            .For<V1ConfigMap>(options: inputs)
            .WithWorkers(workers);
        if (owns)
        {
            builder.Owns<V1ConfigMap>(options: outputs);
        }
        else
        {
            // Not wired to the controller, but started so that tests can wait on the outputs.
            informers.Get<V1ConfigMap>(outputs).Start();
        }

        if (election is not null)
        {
            builder.WithLeaderElection(election);
        }

        var controller = builder.Build(reconciler);
        _cleanup.Add(new Stopper(controller));
        await controller.StartAsync(CancellationToken.None);
        await controller.Started.WaitAsync(Until.Timeout);
        return (controller, informers.Get<V1ConfigMap>(inputs), informers.Get<V1ConfigMap>(outputs), reconciler);
    }

    private sealed class Stopper(Controller controller) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await controller.StopAsync(CancellationToken.None);
            controller.Dispose();
        }
    }
}
