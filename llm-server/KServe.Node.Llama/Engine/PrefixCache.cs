using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Engine;

/// <summary>A finished (or preempted) sequence kept for its KV: its tokens occupy positions 0..Tokens.Length-1 of sequence <see cref="Seq"/>.</summary>
internal sealed class CachedPrefix(SeqId seq, int[] tokens, long lastUsed)
{
    public SeqId Seq { get; } = seq;
    public int[] Tokens { get; } = tokens;
    public long LastUsed { get; set; } = lastUsed;
}

/// <summary>
/// The global prefix cache ledger: finished sequences across all requests, searched for the longest token prefix
/// of a new prompt, evicted least-recently-used, one entry at a time. What an entry's cells are worth is the
/// <see cref="KvLedger"/>'s to say (cells shared with running sequences stay). Pure bookkeeping; the engine performs
/// the KV operations.
/// </summary>
internal sealed class PrefixCache(int capacity)
{
    private readonly List<CachedPrefix> _entries = [];
    private long _clock;

    public int Capacity { get; } = capacity;
    public int Count => _entries.Count;
    public IReadOnlyList<CachedPrefix> Entries => _entries;

    /// <summary>The sequence ids the entries hold.</summary>
    public SeqId[] Sequences => [.. _entries.Select(e => e.Seq)];

    public long Tick() => ++_clock;

    /// <summary>The entry sharing the longest prefix with <paramref name="prompt"/> (at most <paramref name="maxLength"/> tokens).</summary>
    public (CachedPrefix? Entry, int Length) FindLongest(ReadOnlySpan<int> prompt, int maxLength)
    {
        CachedPrefix? best = null;
        var bestLen = 0;
        foreach (var e in _entries)
        {
            var n = Math.Min(Scheduler.CommonPrefix(prompt, e.Tokens), maxLength);
            if (n > bestLen)
            {
                best = e;
                bestLen = n;
            }
        }

        return (best, bestLen);
    }

    public void Touch(CachedPrefix entry) => entry.LastUsed = Tick();

    /// <summary>Adds an entry; returns the least-recently-used entry evicted to make room, if any.</summary>
    public CachedPrefix? Add(CachedPrefix entry)
    {
        CachedPrefix? evicted = null;
        if (_entries.Count >= Capacity)
        {
            evicted = EvictLeastRecentlyUsed();
        }

        _entries.Add(entry);
        return evicted;
    }

    /// <summary>Removes and returns the least-recently-used entry not in <paramref name="keep"/>, or null when there is none.</summary>
    public CachedPrefix? EvictLeastRecentlyUsed(IReadOnlyCollection<CachedPrefix>? keep = null)
    {
        var lru = _entries.Where(e => keep is null || !keep.Contains(e)).MinBy(e => e.LastUsed);
        if (lru is null)
        {
            return null;
        }

        _entries.Remove(lru);
        return lru;
    }
}
