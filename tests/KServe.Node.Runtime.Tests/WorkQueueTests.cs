using KServe.Node.Runtime;
using Microsoft.Extensions.Time.Testing;

namespace KServe.Node.Runtime.Tests;

public sealed class WorkQueueTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Duplicate_adds_collapse_into_one_item()
    {
        using var queue = new WorkQueue<string>(timeProvider: new FakeTimeProvider());
        queue.Add("a");
        queue.Add("a");
        queue.Add("b");
        queue.Add("a");

        Assert.Equal(2, queue.Count);
        var (first, _) = await queue.GetAsync();
        var (second, _) = await queue.GetAsync();
        Assert.Equal(["a", "b"], new[] { first, second });
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public async Task A_key_added_while_processing_is_handed_out_again_only_after_Done()
    {
        using var queue = new WorkQueue<string>(timeProvider: new FakeTimeProvider());
        queue.Add("a");
        var (key, _) = await queue.GetAsync();
        Assert.Equal("a", key);

        queue.Add("a");
        queue.Add("a");
        Assert.Equal(0, queue.Count);
        var second = queue.GetAsync().AsTask();
        Assert.False(second.IsCompleted);

        queue.Done("a");
        var (again, shutdown) = await second.WaitAsync(Wait);
        Assert.Equal("a", again);
        Assert.False(shutdown);
        queue.Done("a");
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public async Task A_waiting_getter_receives_a_key_added_later()
    {
        using var queue = new WorkQueue<string>(timeProvider: new FakeTimeProvider());
        var pending = queue.GetAsync().AsTask();
        Assert.False(pending.IsCompleted);
        queue.Add("x");
        Assert.Equal("x", (await pending.WaitAsync(Wait)).Key);
    }

    [Fact]
    public async Task AddAfter_queues_the_key_when_the_clock_reaches_its_time()
    {
        var clock = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(timeProvider: clock);
        queue.AddAfter("a", TimeSpan.FromSeconds(1));
        Assert.Equal(0, queue.Count);
        Assert.Equal(1, queue.DelayedCount);

        clock.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Equal(0, queue.Count);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, queue.Count);
        Assert.Equal(0, queue.DelayedCount);
        Assert.Equal("a", (await queue.GetAsync()).Key);
    }

    [Fact]
    public async Task AddAfter_keeps_the_earliest_schedule_of_a_key()
    {
        var clock = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(timeProvider: clock);
        queue.AddAfter("a", TimeSpan.FromSeconds(10));
        queue.AddAfter("a", TimeSpan.FromSeconds(1));
        queue.AddAfter("a", TimeSpan.FromSeconds(5));
        Assert.Equal(1, queue.DelayedCount);

        clock.Advance(TimeSpan.FromSeconds(1));
        var (key, _) = await queue.GetAsync();
        queue.Done(key);

        clock.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(0, queue.Count);
        Assert.Equal(0, queue.DelayedCount);
    }

    [Fact]
    public void Delayed_keys_come_out_in_due_order()
    {
        var clock = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(timeProvider: clock);
        queue.AddAfter("late", TimeSpan.FromSeconds(3));
        queue.AddAfter("early", TimeSpan.FromSeconds(1));
        queue.AddAfter("middle", TimeSpan.FromSeconds(2));

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, queue.Count);
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(3, queue.Count);
    }

    [Fact]
    public async Task AddRateLimited_backs_off_exponentially_per_key_and_Forget_resets()
    {
        var clock = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(timeProvider: clock);

        foreach (var expectedMs in new[] { 5, 10, 20, 40 })
        {
            queue.AddRateLimited("a");
            clock.Advance(TimeSpan.FromMilliseconds(expectedMs - 1));
            Assert.Equal(0, queue.Count);
            clock.Advance(TimeSpan.FromMilliseconds(1));
            Assert.Equal(1, queue.Count);
            var (key, _) = await queue.GetAsync();
            queue.Done(key);
        }

        Assert.Equal(4, queue.NumRequeues("a"));
        queue.Forget("a");
        Assert.Equal(0, queue.NumRequeues("a"));
        queue.AddRateLimited("a");
        clock.Advance(TimeSpan.FromMilliseconds(5));
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public void Exponential_backoff_runs_from_5_ms_to_a_cap_of_1000_s()
    {
        var limiter = new ExponentialRateLimiter<string>(TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1000));
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("k"));
        Assert.Equal(TimeSpan.FromMilliseconds(10), limiter.When("k"));
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("other"));
        for (var i = 0; i < 100; i++)
        {
            limiter.When("k");
        }

        Assert.Equal(TimeSpan.FromSeconds(1000), limiter.When("k"));
    }

    [Fact]
    public void Token_bucket_allows_a_burst_then_spaces_calls_at_its_rate()
    {
        var clock = new FakeTimeProvider();
        var bucket = new TokenBucketRateLimiter<string>(qps: 10, burst: 100, clock);
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(TimeSpan.Zero, bucket.When($"k{i}"));
        }

        Assert.Equal(TimeSpan.FromMilliseconds(100), bucket.When("next"));
        Assert.Equal(TimeSpan.FromMilliseconds(200), bucket.When("after"));

        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.Zero, bucket.When("refilled"));
    }

    [Fact]
    public void Default_limiter_takes_the_longer_of_key_backoff_and_bucket()
    {
        var clock = new FakeTimeProvider();
        var limiter = RateLimiters.Default<string>(clock);
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("a"));
        for (var i = 0; i < 99; i++)
        {
            limiter.When($"k{i}");
        }

        // The bucket (10 qps, burst 100) is now empty: a fresh key waits for the bucket, not just 5 ms.
        Assert.Equal(TimeSpan.FromMilliseconds(100), limiter.When("fresh"));
    }

    [Fact]
    public async Task ShutDown_releases_waiting_getters()
    {
        using var queue = new WorkQueue<string>(timeProvider: new FakeTimeProvider());
        var pending = queue.GetAsync().AsTask();
        queue.ShutDown();
        Assert.True((await pending.WaitAsync(Wait)).Shutdown);
        Assert.True((await queue.GetAsync()).Shutdown);
        queue.Add("ignored");
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public async Task A_cancelled_getter_does_not_swallow_a_later_key()
    {
        using var queue = new WorkQueue<string>(timeProvider: new FakeTimeProvider());
        using var cts = new CancellationTokenSource();
        var cancelled = queue.GetAsync(cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Wait));

        queue.Add("a");
        Assert.Equal(1, queue.Count);
        Assert.Equal("a", (await queue.GetAsync()).Key);
    }

    [Fact]
    public async Task Concurrent_workers_never_process_one_key_at_the_same_time()
    {
        using var queue = new WorkQueue<int>(timeProvider: new FakeTimeProvider());
        var inFlight = new int[8];
        var overlaps = 0;
        var processed = 0;
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                var (key, shutdown) = await queue.GetAsync();
                if (shutdown)
                {
                    return;
                }

                if (Interlocked.Increment(ref inFlight[key]) != 1)
                {
                    Interlocked.Increment(ref overlaps);
                }

                await Task.Yield();
                Interlocked.Decrement(ref inFlight[key]);
                Interlocked.Increment(ref processed);
                queue.Done(key);
            }
        })).ToArray();

        for (var i = 0; i < 20_000; i++)
        {
            queue.Add(i % inFlight.Length);
            if (i % 64 == 0)
            {
                await Task.Yield();
            }
        }

        // Workers drain what is still queued before they see the shutdown.
        queue.ShutDown();
        await Task.WhenAll(workers).WaitAsync(Wait);
        Assert.Equal(0, overlaps);
        Assert.InRange(processed, inFlight.Length, 20_000);
    }
}
