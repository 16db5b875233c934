using System.Text;
using KServe.Node.Llama.Engine;
using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Tests;

/// <summary>The pure parts of the engine: scheduling policy (admission, room, preemption, queue timeout), KV and prefix ledgers, stop-string assembly.</summary>
public sealed class SchedulerTests
{
    [Fact]
    public void Generating_sequences_always_get_a_token_and_prompts_are_chunked_under_the_budget()
    {
        var seqs = new List<SchedSequence>
        {
            new(0, 0, true, 1), new(1, 5000, false, 3), new(2, 0, true, 2), new(3, 100, false, 4),
        };

        var plan = Scheduler.PlanStep(seqs, 512);

        Assert.Equal([new SchedSlice(0, 1, false), new SchedSlice(2, 1, false), new SchedSlice(1, 510, true)], plan);
        Assert.Equal(512, plan.Sum(p => p.Tokens));
    }

    [Fact]
    public void Older_prompts_are_served_first_and_small_prompts_fit_in_the_rest()
    {
        var plan = Scheduler.PlanStep([new(0, 30, false, 2), new(1, 50, false, 1)], 100);

        Assert.Equal([new SchedSlice(1, 50, true), new SchedSlice(0, 30, true)], plan);
    }

    [Fact]
    public void Admission_needs_sequence_slots_and_KV_cells()
    {
        Assert.True(Scheduler.CanAdmit(runningSequences: 3, maxParallel: 4, choices: 1, freeCells: 100, evictableCells: 0, uncachedPromptTokens: 50));
        Assert.False(Scheduler.CanAdmit(4, 4, 1, 100, 0, 50));
        Assert.False(Scheduler.CanAdmit(2, 4, 3, 100, 0, 50));
        Assert.False(Scheduler.CanAdmit(0, 4, 1, 40, 0, 50));
        Assert.True(Scheduler.CanAdmit(0, 4, 1, 40, 20, 50));
    }

    [Fact]
    public void The_youngest_request_is_the_victim()
    {
        Assert.Equal(7, Scheduler.PickVictim([(5, 1), (7, 3), (6, 2)]));
        Assert.Equal(-1, Scheduler.PickVictim([]));
    }

    [Fact]
    public void Room_for_a_step_comes_from_cached_prefixes_first_then_the_youngest_request_never_a_lone_one()
    {
        Assert.Equal(KvAction.Proceed, Scheduler.BeforeStep(usedCells: 90, stepTokens: 10, capacity: 100, hasCachedPrefix: true, runningRequests: 3));
        Assert.Equal(KvAction.EvictPrefix, Scheduler.BeforeStep(91, 10, 100, hasCachedPrefix: true, runningRequests: 3));
        Assert.Equal(KvAction.Preempt, Scheduler.BeforeStep(91, 10, 100, hasCachedPrefix: false, runningRequests: 2));
        // Alone, a request was admitted because prompt + n x max_tokens fits: it goes on.
        Assert.Equal(KvAction.Proceed, Scheduler.BeforeStep(91, 10, 100, hasCachedPrefix: false, runningRequests: 1));
    }

    [Fact]
    public void A_decode_without_a_KV_slot_evicts_then_preempts_and_fails_only_a_request_alone()
    {
        Assert.Equal(KvAction.EvictPrefix, Scheduler.AfterNoSlot(hasCachedPrefix: true, runningRequests: 1));
        Assert.Equal(KvAction.Preempt, Scheduler.AfterNoSlot(hasCachedPrefix: false, runningRequests: 2));
        Assert.Equal(KvAction.Fail, Scheduler.AfterNoSlot(hasCachedPrefix: false, runningRequests: 1));
    }

    [Fact]
    public void Only_a_request_never_admitted_times_out_in_the_queue()
    {
        Assert.True(Scheduler.QueueTimedOut(everAdmitted: false, waitedSeconds: 5.1, timeoutSeconds: 5));
        Assert.False(Scheduler.QueueTimedOut(everAdmitted: false, waitedSeconds: 4.9, timeoutSeconds: 5));
        Assert.False(Scheduler.QueueTimedOut(everAdmitted: true, waitedSeconds: 60, timeoutSeconds: 5));   // preempted
        Assert.False(Scheduler.QueueTimedOut(everAdmitted: false, waitedSeconds: 60, timeoutSeconds: 0));  // no limit
    }

    [Fact]
    public void The_prefix_cache_finds_the_longest_prefix_and_evicts_least_recently_used()
    {
        var cache = new PrefixCache(2);
        var a = new CachedPrefix(S(10), [1, 2, 3, 4], cache.Tick());
        var b = new CachedPrefix(S(11), [1, 2, 9], cache.Tick());
        cache.Add(a);
        cache.Add(b);

        var (entry, len) = cache.FindLongest([1, 2, 3, 7], 3);
        Assert.Same(a, entry);
        Assert.Equal(3, len);
        Assert.Equal(2, cache.FindLongest([1, 2, 3, 4, 5], 2).Length);

        cache.Touch(a);
        var evicted = cache.Add(new CachedPrefix(S(12), [5], cache.Tick()));
        Assert.Same(b, evicted);
        Assert.Same(a, cache.EvictLeastRecentlyUsed(keep: null));
        Assert.Null(cache.EvictLeastRecentlyUsed(keep: [cache.Entries[0]]));
    }

    [Fact]
    public void The_KV_ledger_counts_shared_cells_once_and_frees_only_what_no_sequence_still_holds()
    {
        var kv = new KvLedger();
        kv.Grow(S(0), 100);                 // a prompt of 100 tokens on sequence 0
        kv.Copy(S(0), S(1), 100);              // n = 2: the sibling shares all of it
        kv.Grow(S(0), 110);
        kv.Grow(S(1), 105);
        Assert.Equal(100 + 10 + 5, kv.Used);
        Assert.Equal(10, kv.FreedBy([S(0)]));   // its prompt stays with sequence 1
        Assert.Equal(115, kv.FreedBy([S(0), S(1)]));

        kv.Copy(S(0), S(2), 60);               // a new prompt reuses 60 tokens of sequence 0 (a cached prefix)
        kv.Grow(S(2), 80);
        Assert.Equal(135, kv.Used);
        kv.Free(S(0));
        // Cells 0..99 are still held by 1 (and 0..59 by 2 too); 100..109 were 0's alone.
        Assert.Equal(125, kv.Used);
        kv.Free(S(1));
        Assert.Equal(60 + 20, kv.Used);
        Assert.Equal(80, kv.Length(S(2)));
        kv.Free(S(2));
        Assert.Equal(0, kv.Used);
        Assert.Empty(kv.Sequences);
    }

    [Fact]
    public void A_sequence_that_keeps_growing_after_others_copied_it_counts_its_new_cells()
    {
        var kv = new KvLedger();
        kv.Grow(S(3), 10);
        kv.Copy(S(3), S(4), 6);
        kv.Grow(S(3), 20);
        kv.Grow(S(4), 9);
        Assert.Equal(20 + 3, kv.Used);
        Assert.Equal(3 + 0, kv.FreedBy([S(4)]));
        Assert.Equal(14, kv.FreedBy([S(3)]));    // 6..19 of 3's own; 0..5 stay with 4
        Assert.Throws<InvalidOperationException>(() => kv.Copy(S(3), S(4), 1));
    }

    [Fact]
    public void Stop_strings_across_pieces_are_held_back_and_cut()
    {
        var t = new TextAssembler(["END", "xyz"]);
        var released = new StringBuilder();
        string? stop = null;
        foreach (var piece in new[] { "Hello E", "N", "ough? E", "ND here" })
        {
            var (r, s) = t.Push(Encoding.UTF8.GetBytes(piece));
            released.Append(r);
            Assert.False(released.ToString().EndsWith('E') && s is null && piece != "N", "a possible stop prefix leaked");
            stop ??= s;
            if (s != null)
            {
                break;
            }
        }

        Assert.Equal("END", stop);
        Assert.Equal("Hello ENough? ", released.ToString());
    }

    [Fact]
    public void Utf8_characters_split_across_tokens_are_completed_before_release()
    {
        var t = new TextAssembler([]);
        var bytes = Encoding.UTF8.GetBytes("é😀");
        Assert.Equal("", t.Push(bytes.AsSpan(0, 1)).Release);
        Assert.Equal("é", t.Push(bytes.AsSpan(1, 1)).Release);
        Assert.Equal("", t.Push(bytes.AsSpan(2, 3)).Release);
        Assert.Equal("😀", t.Push(bytes.AsSpan(5)).Release);
        Assert.Equal("", t.Push(bytes.AsSpan(0, 1)).Release);
        Assert.Equal("\uFFFD", t.Flush());
    }

    private static SeqId S(int value) => new(value);
}
