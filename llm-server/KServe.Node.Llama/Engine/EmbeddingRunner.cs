using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Engine;

/// <summary>An embeddings request being worked through, one decode a step.</summary>
internal sealed class EmbeddingJob(IReadOnlyList<int[]> inputs, CancellationToken ct)
{
    public IReadOnlyList<int[]> Inputs { get; } = inputs;
    public CancellationToken Ct { get; } = ct;
    public float[][] Result { get; } = new float[inputs.Count][];
    public TaskCompletionSource<float[][]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The first input not embedded yet.</summary>
    public int Next { get; set; }
}

/// <summary>
/// Embeddings in a context of their own (created on first use), scheduled by the inference loop: at most one decode
/// a step, inside the step's token budget, so streams keep flowing beside it. Each input is its own sequence of a
/// unified KV pool, so a batch of short inputs costs one decode. Inference thread only, except <see cref="Decodes"/>.
/// </summary>
internal sealed class EmbeddingRunner(NativeContexts contexts, int embeddingSize, int poolingType, Action ended) : IDisposable
{
    /// <summary>Sequences one embedding decode may hold.</summary>
    public const int SequencesPerDecode = 64;

    private readonly Queue<EmbeddingJob> _jobs = new();
    private readonly int _contextSize = contexts.Options.EmbeddingContextSize;
    private SafeLlamaContextHandle? _ctx;
    private BatchBuilder? _batch;
    private long _decodes;

    /// <summary>llama_decode calls made so far (thread-safe).</summary>
    public long Decodes => Interlocked.Read(ref _decodes);

    public bool HasWork => _jobs.Count > 0;

    public void Enqueue(EmbeddingJob job) => _jobs.Enqueue(job);

    /// <summary>
    /// One decode for the oldest request: its next inputs that fit <paramref name="budget"/> tokens (an input longer
    /// than the budget goes alone; pooling needs an input whole). Returns the tokens decoded.
    /// </summary>
    public int Step(int budget)
    {
        while (_jobs.TryPeek(out var job))
        {
            if (job.Ct.IsCancellationRequested)
            {
                End(job.Done.TrySetCanceled(job.Ct));
                continue;
            }

            try
            {
                var first = job.Next;
                var limit = Math.Max(budget, job.Inputs[first].Length);
                var tokens = 0;
                while (job.Next < job.Inputs.Count && job.Next - first < SequencesPerDecode && tokens + job.Inputs[job.Next].Length <= limit)
                {
                    tokens += job.Inputs[job.Next].Length;
                    job.Next++;
                }

                Embed(job.Inputs, first, job.Next, job.Result);
                if (job.Next == job.Inputs.Count)
                {
                    End(job.Done.TrySetResult(job.Result));
                }

                return tokens;
            }
            catch (Exception e)
            {
                End(job.Done.TrySetException(e));
            }
        }

        return 0;
    }

    /// <summary>Fails every queued request (the engine stops).</summary>
    public void FailAll(Exception e)
    {
        while (_jobs.TryPeek(out var job))
        {
            End(job.Done.TrySetException(e));
        }
    }

    /// <summary>Takes the oldest request off the queue; <paramref name="completed"/> is whether this ended its task.</summary>
    private void End(bool completed)
    {
        _jobs.Dequeue();
        if (completed)
        {
            ended();
        }
    }

    private void Embed(IReadOnlyList<int[]> inputs, int first, int end, float[][] result)
    {
        if (_ctx == null)
        {
            _ctx = contexts.Create(cp =>
            {
                cp.NCtx = (uint)_contextSize;
                cp.NBatch = (uint)_contextSize;
                cp.NUbatch = (uint)_contextSize;
                cp.NSeqMax = SequencesPerDecode;
                cp.KvUnified = 1; // the inputs of one decode share the whole context, whatever their lengths
                cp.Embeddings = 1;
                cp.PoolingType = poolingType;
                cp.NOutputsMaxPerSeq = 0; // pooling reads every token's output
                return cp;
            });
            _batch = new BatchBuilder(_contextSize);
        }

        _ctx.Clear();
        _batch!.Clear();
        for (var k = first; k < end; k++)
        {
            var tokens = inputs[k];
            for (var i = 0; i < tokens.Length; i++)
            {
                _batch.Add(tokens[i], i, new SeqId(k - first), output: true);
            }
        }

        var rc = _ctx.Decode(_batch);
        Interlocked.Increment(ref _decodes);
        try
        {
            if (rc != DecodeResult.Ok)
            {
                throw new InvalidOperationException($"embedding decode failed with {rc}");
            }

            for (var k = first; k < end; k++)
            {
                var pooled = _ctx.PooledEmbedding(new SeqId(k - first), embeddingSize);
                if (pooled.IsEmpty)
                {
                    throw new InvalidOperationException("the model produced no pooled embedding");
                }

                result[k] = Normalized(pooled);
            }
        }
        finally
        {
            _ctx.Clear();
        }
    }

    private static float[] Normalized(ReadOnlySpan<float> pooled)
    {
        var v = pooled.ToArray();
        double norm = 0;
        foreach (var x in v)
        {
            norm += (double)x * x;
        }

        var scale = norm > 0 ? (float)(1.0 / Math.Sqrt(norm)) : 0f;
        for (var i = 0; i < v.Length; i++)
        {
            v[i] *= scale;
        }

        return v;
    }

    public void Dispose()
    {
        _batch?.Dispose();
        _ctx?.Dispose();
    }
}
