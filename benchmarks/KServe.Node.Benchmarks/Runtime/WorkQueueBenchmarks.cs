using BenchmarkDotNet.Attributes;
using KServe.Node.Runtime;

namespace KServe.Node.Benchmarks.Runtime;

/// <summary>
/// Work-queue throughput: keys through Add → GetAsync → Done. <c>Distinct</c> adds every key once; <c>Duplicates</c>
/// adds each key 10 times (collapsing); <c>FourWorkers</c> drains with four concurrent consumers.
/// </summary>
[MemoryDiagnoser]
public class WorkQueueBenchmarks
{
    private ObjectKey[] _keys = [];

    [Params(10_000)]
    public int Keys { get; set; }

    [GlobalSetup]
    public void Setup() => _keys = [.. Enumerable.Range(0, Keys).Select(i => new ObjectKey("ns", $"object-{i}"))];

    [Benchmark(Baseline = true, OperationsPerInvoke = 10_000)]
    public async Task Distinct()
    {
        using var queue = new WorkQueue<ObjectKey>();
        foreach (var key in _keys)
        {
            queue.Add(key);
        }

        for (var i = 0; i < _keys.Length; i++)
        {
            var (key, _) = await queue.GetAsync();
            queue.Done(key);
        }
    }

    [Benchmark(OperationsPerInvoke = 10_000)]
    public async Task Duplicates()
    {
        using var queue = new WorkQueue<ObjectKey>();
        for (var round = 0; round < 10; round++)
        {
            foreach (var key in _keys)
            {
                queue.Add(key);
            }
        }

        for (var i = 0; i < _keys.Length; i++)
        {
            var (key, _) = await queue.GetAsync();
            queue.Done(key);
        }
    }

    [Benchmark(OperationsPerInvoke = 10_000)]
    public async Task FourWorkers()
    {
        using var queue = new WorkQueue<ObjectKey>();
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                var (key, shutdown) = await queue.GetAsync();
                if (shutdown)
                {
                    return;
                }

                queue.Done(key);
            }
        })).ToArray();

        foreach (var key in _keys)
        {
            queue.Add(key);
        }

        queue.ShutDown();
        await Task.WhenAll(workers);
    }

    [Benchmark(OperationsPerInvoke = 10_000)]
    public void RateLimitedAdd()
    {
        using var queue = new WorkQueue<ObjectKey>(new ExponentialRateLimiter<ObjectKey>(TimeSpan.FromHours(1), TimeSpan.FromHours(2)));
        foreach (var key in _keys)
        {
            queue.AddRateLimited(key);
        }
    }
}
