using System.Collections.Concurrent;
using k8s;
using k8s.Models;
using KServe.Node.Runtime;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Runtime.Tests;

/// <summary>Waits on informer events (signals, not sleeps) for a condition over the cache.</summary>
internal static class Until
{
    /// <summary>A generous bound: these waits normally end in well under a second.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static async Task TrueAsync<T>(Informer<T> informer, Func<bool> condition, string what, TimeSpan? timeout = null)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = informer.AddEventHandler(_ =>
        {
            if (condition())
            {
                done.TrySetResult();
            }
        });
        if (condition())
        {
            return;
        }

        try
        {
            await done.Task.WaitAsync(timeout ?? Timeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"timed out waiting for: {what}");
        }
    }
}

/// <summary>
/// The test reconciler: for each input ConfigMap (label role=input) it keeps an owned output ConfigMap
/// <c>{name}-out</c> (label role=output) with the same data, following the reconcile body order.
/// </summary>
internal sealed class CopyReconciler(SharedInformerFactory informers, InformerOptions inputs) : IReconciler
{
    private readonly ResourceClient<V1ConfigMap> _client = informers.ClientFor<V1ConfigMap>();

    public ConcurrentDictionary<ObjectKey, int> Calls { get; } = new();

    public Func<ObjectKey, int, Task>? Hook { get; set; }

    public async Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var call = Calls.AddOrUpdate(key, 1, (_, n) => n + 1);
        if (Hook is { } hook)
        {
            await hook(key, call);
        }

        // 1. get: the cached input; gone means done (the API server's GC would remove the owned output).
        var input = informers.Get<V1ConfigMap>(inputs).Get(key);
        if (input is null)
        {
            return ReconcileResult.Done;
        }

        // 2. ensure the child: get-or-create, update only on a real diff.
        var outKey = new ObjectKey(key.Namespace, key.Name + "-out");
        var current = await _client.GetAsync(outKey, ct);
        if (current is null)
        {
            var child = new V1ConfigMap
            {
                Metadata = new V1ObjectMeta
                {
                    Name = outKey.Name,
                    NamespaceProperty = outKey.Namespace,
                    Labels = new Dictionary<string, string> { ["role"] = "output" },
                },
                Data = new Dictionary<string, string>(input.Data ?? new Dictionary<string, string>()),
            };
            OwnerReferences.Set(child, input);
            try
            {
                await _client.CreateAsync(child, ct);
                return ReconcileResult.Done;
            }
            catch (KubernetesApiException e) when (e.IsAlreadyExists)
            {
                current = await _client.GetAsync(outKey, ct) ?? throw new InvalidOperationException("created and gone again");
            }
        }

        await Updates.UpdateAsync(_client, current, o =>
        {
            if (SameData(o.Data, input.Data))
            {
                return false;
            }

            o.Data = new Dictionary<string, string>(input.Data ?? new Dictionary<string, string>());
            return true;
        }, ct: ct);
        return ReconcileResult.Done;
    }

    public static bool SameData(IDictionary<string, string>? a, IDictionary<string, string>? b)
    {
        a ??= new Dictionary<string, string>();
        b ??= new Dictionary<string, string>();
        return a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
    }
}

/// <summary>Writes log lines into the test's output, so that a failing test shows what the runtime did.</summary>
internal sealed class TestOutputLoggerProvider : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(categoryName);

    public void Dispose()
    {
    }

    public static ILoggerFactory Factory() =>
        LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new TestOutputLoggerProvider()));

    private sealed class Logger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var output = TestContext.Current.TestOutputHelper;
            if (output is null)
            {
                return;
            }

            try
            {
                var shortCategory = category[(category.LastIndexOf('.') + 1)..];
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {shortCategory}: {formatter(state, exception)}{(exception is null ? "" : " | " + exception.Message)}");
            }
            catch (InvalidOperationException)
            {
                // The test already finished; its output is closed.
            }
        }
    }
}
