using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Engine;

/// <summary>
/// Prompt scoring (the log-probability of every prompt token given those before it) in a context of its own,
/// created on first use: the serving context keeps its KV and output buffer for generation, and scoring needs
/// logits at every position. Runs on the inference thread; a cancelled request stops at the next graph node.
/// </summary>
internal sealed unsafe class PromptScorer(NativeContexts contexts, Sampling sampling, int contextSize, int vocabSize) : IDisposable
{
    /// <summary>Positions one scoring decode holds: its logits (positions x vocabulary floats) stay a few tens of MB.</summary>
    private const int Chunk = 128;

    private SafeLlamaContextHandle? _ctx;
    private BatchBuilder? _batch;
    private GCHandle _self;
    private CancellationToken _ct;

    /// <summary>Element i describes token i+1, with the <paramref name="topK"/> most likely tokens at its position.</summary>
    public PromptTokenLogprob[] Score(int[] tokens, int topK, CancellationToken ct)
    {
        if (_ctx == null)
        {
            _ctx = contexts.Create(cp =>
            {
                cp.NCtx = (uint)contextSize;
                cp.NBatch = Chunk;
                cp.NUbatch = Chunk;
                cp.NSeqMax = 1;
                return cp;
            });
            _self = GCHandle.Alloc(this, GCHandleType.Weak);
            _ctx.SetAbortCallback(&Abort, GCHandle.ToIntPtr(_self));
            _batch = new BatchBuilder(Chunk);
        }

        _ct = ct;
        _ctx.Clear();
        var result = new PromptTokenLogprob[tokens.Length - 1];
        var seq = new SeqId(0);
        try
        {
            // The last token predicts nothing in the prompt: its logits are not needed.
            for (var start = 0; start < tokens.Length - 1; start += Chunk)
            {
                ct.ThrowIfCancellationRequested();
                var n = Math.Min(Chunk, tokens.Length - 1 - start);
                _batch!.Clear();
                for (var i = 0; i < n; i++)
                {
                    _batch.Add(tokens[start + i], start + i, seq, output: true);
                }

                var rc = _ctx.Decode(_batch);
                ct.ThrowIfCancellationRequested();
                if (rc != DecodeResult.Ok)
                {
                    throw new InvalidOperationException($"scoring decode failed with {rc}");
                }

                for (var i = 0; i < n; i++)
                {
                    var next = tokens[start + i + 1];
                    var (lp, top) = sampling.Logprobs(_ctx.Logits(i, vocabSize), next, topK);
                    result[start + i] = new PromptTokenLogprob(next, lp, top ?? []);
                }
            }

            return result;
        }
        finally
        {
            _ct = default;
            _ctx.Clear();
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte Abort(IntPtr data) =>
        GCHandle.FromIntPtr(data).Target is PromptScorer { _ct.IsCancellationRequested: true } ? (byte)1 : (byte)0;

    public void Dispose()
    {
        _batch?.Dispose();
        _ctx?.Dispose();
        if (_self.IsAllocated)
        {
            _self.Free();
        }
    }
}
