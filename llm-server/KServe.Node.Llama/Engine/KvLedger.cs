using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Engine;

/// <summary>
/// The exact count of the cells the engine's sequences hold in llama.cpp's unified KV cache, where a cell is free
/// once no sequence holds it. A sequence's cells are runs ("segments") written by one sequence; a prefix copied to
/// another sequence (<c>llama_memory_seq_cp</c>: the prefix cache, the choices of <c>n &gt; 1</c>) makes both hold the
/// same cells. A segment's cells stay in use up to the furthest position any holder still covers, so freeing a
/// sequence frees only what no other sequence shares. Admission, eviction, preemption and the usage gauge read this
/// one ledger. Pure bookkeeping: the engine performs the KV operations.
/// </summary>
internal sealed class KvLedger
{
    private sealed class Segment(int start)
    {
        public int Start { get; } = start;

        /// <summary>Each holder's end (exclusive) in this segment.</summary>
        public Dictionary<SeqId, int> Ends { get; } = [];

        public int Live => Ends.Count == 0 ? 0 : Ends.Values.Max() - Start;
    }

    private sealed class Holder
    {
        public List<Segment> Segments { get; } = [];

        /// <summary>The segment this sequence writes into, once it decoded a token of its own.</summary>
        public Segment? Own { get; set; }

        public int Length { get; set; }
    }

    private readonly Dictionary<SeqId, Holder> _holders = [];
    private readonly HashSet<Segment> _segments = [];

    /// <summary>Cells in use.</summary>
    public int Used => _segments.Sum(s => s.Live);

    /// <summary>Positions 0..Length-1 of the sequence hold cells (0 for a sequence the ledger does not know).</summary>
    public int Length(SeqId seq) => _holders.TryGetValue(seq, out var h) ? h.Length : 0;

    /// <summary>The sequences the ledger knows.</summary>
    public IEnumerable<SeqId> Sequences => _holders.Keys;

    /// <summary><paramref name="dst"/> (empty) now shares positions 0..<paramref name="length"/>-1 of <paramref name="src"/>.</summary>
    public void Copy(SeqId src, SeqId dst, int length)
    {
        if (Length(dst) != 0)
        {
            throw new InvalidOperationException($"sequence {dst} is not empty");
        }

        var from = _holders[src];
        if (length > from.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"sequence {src} holds {from.Length} positions, not {length}");
        }

        var to = Get(dst);
        foreach (var seg in from.Segments)
        {
            if (seg.Start >= length)
            {
                break;
            }

            seg.Ends[dst] = Math.Min(seg.Ends[src], length);
            to.Segments.Add(seg);
        }

        to.Length = length;
    }

    /// <summary>The sequence decoded its own tokens up to <paramref name="length"/> positions.</summary>
    public void Grow(SeqId seq, int length)
    {
        var h = Get(seq);
        if (length <= h.Length)
        {
            return;
        }

        // A segment shared with others is theirs too: new cells go into a segment of this sequence's own, started
        // where it stands (after a copy, or after others copied its segment and it keeps growing).
        if (h.Own is null || h.Segments.Count == 0 || h.Segments[^1] != h.Own)
        {
            h.Own = new Segment(h.Length);
            h.Segments.Add(h.Own);
            _segments.Add(h.Own);
        }

        h.Own.Ends[seq] = length;
        h.Length = length;
    }

    /// <summary>The sequence holds nothing any more (<c>llama_memory_seq_rm(seq, -1, -1)</c>).</summary>
    public void Free(SeqId seq)
    {
        if (!_holders.Remove(seq, out var h))
        {
            return;
        }

        foreach (var seg in h.Segments)
        {
            seg.Ends.Remove(seq);
            if (seg.Ends.Count == 0)
            {
                _segments.Remove(seg);
            }
        }
    }

    /// <summary>The cells that freeing all of <paramref name="seqs"/> would give back.</summary>
    public int FreedBy(IReadOnlyCollection<SeqId> seqs)
    {
        if (seqs.Count == 0)
        {
            return 0;
        }

        var freed = 0;
        foreach (var seg in _segments)
        {
            var after = 0;
            var any = false;
            foreach (var (holder, end) in seg.Ends)
            {
                if (!seqs.Contains(holder))
                {
                    after = any ? Math.Max(after, end) : end;
                    any = true;
                }
            }

            freed += seg.Live - (any ? after - seg.Start : 0);
        }

        return freed;
    }

    private Holder Get(SeqId seq)
    {
        if (!_holders.TryGetValue(seq, out var h))
        {
            h = new Holder();
            _holders[seq] = h;
        }

        return h;
    }
}
