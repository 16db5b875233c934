namespace KServe.Node.Llama.Native;

/// <summary>
/// A <c>llama_batch</c> of up to <see cref="Capacity"/> tokens, each in one sequence, filled token by token: the one
/// way the engine, embeddings and prompt scoring write a batch.
/// </summary>
internal sealed unsafe class BatchBuilder : IDisposable
{
    private LlamaBatch _batch;

    public BatchBuilder(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _batch = NativeMethods.llama_batch_init(capacity, 0, 1);
    }

    public int Capacity { get; }

    /// <summary>Tokens in the batch.</summary>
    public int Count => _batch.NTokens;

    /// <summary>The native batch, for <c>llama_decode</c>.</summary>
    internal LlamaBatch Native => _batch;

    public void Clear() => _batch.NTokens = 0;

    /// <summary>Appends a token at <paramref name="pos"/> of <paramref name="seq"/>; returns its index (the logits' index when <paramref name="output"/>).</summary>
    public int Add(int token, int pos, SeqId seq, bool output)
    {
        ObjectDisposedException.ThrowIf(_batch.Token == null, this);
        var i = _batch.NTokens;
        if (i >= Capacity)
        {
            throw new InvalidOperationException($"the batch holds {Capacity} tokens");
        }

        _batch.Token[i] = token;
        _batch.Pos[i] = pos;
        _batch.NSeqId[i] = 1;
        _batch.SeqId[i][0] = seq.Value;
        _batch.Logits[i] = output ? (sbyte)1 : (sbyte)0;
        _batch.NTokens = i + 1;
        return i;
    }

    public void Dispose()
    {
        if (_batch.Token != null)
        {
            NativeMethods.llama_batch_free(_batch);
            _batch = default;
        }
    }
}
