using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Engine;

/// <summary>
/// The serving context's KV cache as the engine holds it: the sequence ids, the cell ledger, the prefix cache, and
/// the native sequence operations, always performed together so the ledger and llama.cpp agree. Inference thread only.
/// </summary>
internal sealed class KvSpace
{
    private readonly SafeLlamaContextHandle _ctx;
    private readonly KvLedger _ledger = new();
    private readonly PrefixCache _prefixes;
    private readonly Stack<SeqId> _free = new();

    /// <param name="ctx">The serving context.</param>
    /// <param name="prefixCapacity">Sequences kept as cached prefixes (beyond those running).</param>
    /// <param name="partialReuse">Whether a sequence's KV may be reused in part (a prefix); not for recurrent or hybrid models, whose state is not per position.</param>
    public KvSpace(SafeLlamaContextHandle ctx, int prefixCapacity, bool partialReuse)
    {
        _ctx = ctx;
        _prefixes = new PrefixCache(prefixCapacity);
        PartialReuse = partialReuse;
        for (var i = ctx.MaxSequences - 1; i >= 0; i--)
        {
            _free.Push(new SeqId(i));
        }
    }

    /// <summary>Cells in the cache.</summary>
    public int Capacity => _ctx.ContextSize;

    /// <summary>Cells some sequence holds.</summary>
    public int Used => _ledger.Used;

    public int FreeCells => Capacity - Used;

    public bool PartialReuse { get; }

    public int CachedPrefixes => _prefixes.Count;

    /// <summary>Cells held only by cached prefixes (what evicting them all would give back).</summary>
    public int Reclaimable => _ledger.FreedBy(_prefixes.Sequences);

    /// <summary>Cells evicting every cached prefix but <paramref name="keep"/> would give back.</summary>
    public int EvictableExcept(IReadOnlySet<CachedPrefix> keep) =>
        _ledger.FreedBy(_prefixes.Entries.Where(e => !keep.Contains(e)).Select(e => e.Seq).ToArray());

    /// <summary>A free sequence id, evicting the least recently used cached prefix (not one of <paramref name="keep"/>) when none is free.</summary>
    public SeqId Acquire(IReadOnlySet<CachedPrefix> keep)
    {
        if (_free.Count == 0)
        {
            EvictOne(keep);
        }

        return _free.Pop();
    }

    /// <summary>
    /// Lets go of a sequence holding <paramref name="tokens"/>: with <paramref name="keep"/> (and a prefix cache that can
    /// reuse it) its cells stay as a cached prefix, evicting the least recently used one when the cache is full;
    /// otherwise they are freed.
    /// </summary>
    public void Release(SeqId seq, IReadOnlyList<int> tokens, bool keep)
    {
        if (keep && tokens.Count > 0 && _prefixes.Capacity > 0 && PartialReuse)
        {
            if (_prefixes.Add(new CachedPrefix(seq, [.. tokens], _prefixes.Tick())) is { } evicted)
            {
                Free(evicted.Seq);
            }
        }
        else
        {
            Free(seq);
        }
    }

    /// <summary>Evicts the least recently used cached prefix not in <paramref name="keep"/>; false when there is none.</summary>
    public bool EvictOne(IReadOnlySet<CachedPrefix>? keep = null)
    {
        if (_prefixes.EvictLeastRecentlyUsed(keep) is not { } e)
        {
            return false;
        }

        Free(e.Seq);
        return true;
    }

    /// <summary>The cached prefix sharing the longest prefix with <paramref name="tokens"/> (at most <paramref name="max"/>).</summary>
    public (CachedPrefix? Entry, int Length) FindCached(ReadOnlySpan<int> tokens, int max) =>
        PartialReuse ? _prefixes.FindLongest(tokens, max) : (null, 0);

    /// <summary><paramref name="dst"/> (empty) shares positions 0..<paramref name="length"/>-1 of <paramref name="src"/>.</summary>
    public void Share(SeqId src, SeqId dst, int length)
    {
        _ctx.Copy(src, dst, length);
        _ledger.Copy(src, dst, length);
    }

    /// <summary>The cached prefix was reused now.</summary>
    public void Touch(CachedPrefix entry) => _prefixes.Touch(entry);

    /// <summary>The sequence's KV holds positions 0..<paramref name="length"/>-1 after a decode.</summary>
    public void Grew(SeqId seq, int length) => _ledger.Grow(seq, length);

    /// <summary>Drops what a failed decode may have left in <paramref name="seq"/> beyond its <paramref name="length"/> committed positions.</summary>
    public void Truncate(SeqId seq, int length) => _ctx.RemoveFrom(seq, length);

    /// <summary>The ledger's sequences with their lengths and llama.cpp's highest positions, and sequences llama.cpp holds that the ledger does not know.</summary>
    public (IReadOnlyList<(int Seq, int Ledger, int PosMax)> Known, int[] Unknown) Check()
    {
        var known = _ledger.Sequences.Select(seq => (seq.Value, _ledger.Length(seq), _ctx.PosMax(seq))).ToList();
        var unknown = Enumerable.Range(0, _ctx.MaxSequences).Where(i => !known.Any(k => k.Value == i) && _ctx.PosMax(new SeqId(i)) >= 0).ToArray();
        return (known, unknown);
    }

    public int PosMax(SeqId seq) => _ctx.PosMax(seq);

    private void Free(SeqId seq)
    {
        _ctx.RemoveFrom(seq);
        _ledger.Free(seq);
        _free.Push(seq);
    }
}
