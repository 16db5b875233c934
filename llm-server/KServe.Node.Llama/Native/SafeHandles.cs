using System.Runtime.InteropServices;

namespace KServe.Node.Llama.Native;

/// <summary>Owns a <c>llama_model</c>.</summary>
internal sealed class SafeLlamaModelHandle : SafeHandle
{
    public SafeLlamaModelHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public static SafeLlamaModelHandle Load(string path, LlamaModelParams parameters)
    {
        var ptr = NativeMethods.llama_model_load_from_file(path, parameters);
        if (ptr == IntPtr.Zero)
        {
            throw new LlamaLoadException($"llama.cpp could not load the model '{path}' (see the log above for the reason)");
        }

        var h = new SafeLlamaModelHandle();
        h.SetHandle(ptr);
        return h;
    }

    /// <summary>Recurrent or hybrid: the state is not per position, so a sequence's KV cannot be reused in part.</summary>
    public bool HasPerPositionState => !NativeMethods.llama_model_is_recurrent(this) && !NativeMethods.llama_model_is_hybrid(this);

    public int EmbeddingSize => NativeMethods.llama_model_n_embd(this);

    public int TrainingContextLength => NativeMethods.llama_model_n_ctx_train(this);

    /// <summary>Has a decoder (embeddings need one).</summary>
    public bool HasDecoder => NativeMethods.llama_model_has_decoder(this);

    /// <summary>llama.cpp's one-line description (architecture, size, type), or null.</summary>
    public unsafe string? Description
    {
        get
        {
            Span<byte> desc = stackalloc byte[256];
            fixed (byte* d = desc)
            {
                var n = NativeMethods.llama_model_desc(this, d, (nuint)desc.Length);
                return n > 0 ? System.Text.Encoding.UTF8.GetString(desc[..Math.Min(n, desc.Length)]) : null;
            }
        }
    }

    /// <summary>The default chat template from the GGUF metadata, or null.</summary>
    public unsafe string? ChatTemplate
    {
        get
        {
            var template = NativeMethods.llama_model_chat_template(this, null);
            return template == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(template);
        }
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.llama_model_free(handle);
        return true;
    }
}

/// <summary>
/// Owns a <c>llama_context</c> (holding a reference on its model so the model outlives it) and is the typed way to
/// it: decode, logits, pooled embeddings and the sequence operations of its KV memory.
/// </summary>
internal sealed unsafe class SafeLlamaContextHandle : SafeHandle
{
    private SafeLlamaModelHandle? _model;
    private IntPtr _memory;

    public SafeLlamaContextHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public static SafeLlamaContextHandle Create(SafeLlamaModelHandle model, LlamaContextParams parameters)
    {
        var ptr = NativeMethods.llama_init_from_model(model, parameters);
        if (ptr == IntPtr.Zero)
        {
            throw new LlamaLoadException($"llama.cpp could not create a context (n_ctx {parameters.NCtx}, n_seq_max {parameters.NSeqMax}); see the log above");
        }

        var h = new SafeLlamaContextHandle();
        var added = false;
        model.DangerousAddRef(ref added);
        h._model = model;
        h.SetHandle(ptr);
        h._memory = NativeMethods.llama_get_memory(h);
        h.ContextSize = (int)NativeMethods.llama_n_ctx(h);
        h.MaxSequences = (int)NativeMethods.llama_n_seq_max(h);
        return h;
    }

    /// <summary>KV cells (<c>n_ctx</c>).</summary>
    public int ContextSize { get; private set; }

    /// <summary>Sequences the context holds (<c>n_seq_max</c>).</summary>
    public int MaxSequences { get; private set; }

    public DecodeResult Decode(BatchBuilder batch) => (DecodeResult)NativeMethods.llama_decode(this, batch.Native);

    /// <summary>The logits of batch index <paramref name="i"/> (an output of the last decode), writable (<c>min_tokens</c> bans endings there).</summary>
    public Span<float> Logits(int i, int vocabSize) => new(NativeMethods.llama_get_logits_ith(this, i), vocabSize);

    /// <summary>The pooled embedding of <paramref name="seq"/> after an embeddings decode; empty when the model produced none.</summary>
    public ReadOnlySpan<float> PooledEmbedding(SeqId seq, int size)
    {
        var e = NativeMethods.llama_get_embeddings_seq(this, seq.Value);
        return e == null ? [] : new ReadOnlySpan<float>(e, size);
    }

    /// <summary>Decodes on <paramref name="pool"/> (prompts on <paramref name="batchPool"/> when given).</summary>
    public void Attach(CpuThreadpool? pool, CpuThreadpool? batchPool)
    {
        if (pool != null)
        {
            NativeMethods.llama_attach_threadpool(this, pool.Handle, batchPool?.Handle ?? IntPtr.Zero);
        }
    }

    /// <summary>ggml calls <paramref name="callback"/> between graph nodes; a non-zero answer aborts the decode (<see cref="DecodeResult.Aborted"/>).</summary>
    public void SetAbortCallback(delegate* unmanaged[Cdecl]<IntPtr, byte> callback, IntPtr data) => NativeMethods.llama_set_abort_callback(this, callback, data);

    /// <summary>Removes positions [<paramref name="from"/>, end) of <paramref name="seq"/> (from 0: all of it).</summary>
    public void RemoveFrom(SeqId seq, int from = 0) => NativeMethods.llama_memory_seq_rm(_memory, seq.Value, from, -1);

    /// <summary><paramref name="dst"/> shares positions [0, <paramref name="length"/>) of <paramref name="src"/> (all of it when null).</summary>
    public void Copy(SeqId src, SeqId dst, int? length = null) => NativeMethods.llama_memory_seq_cp(_memory, src.Value, dst.Value, length is null ? -1 : 0, length ?? -1);

    /// <summary>The highest position <paramref name="seq"/> holds (-1: none).</summary>
    public int PosMax(SeqId seq) => NativeMethods.llama_memory_seq_pos_max(_memory, seq.Value);

    /// <summary>Empties every sequence.</summary>
    public void Clear() => NativeMethods.llama_memory_clear(_memory, true);

    protected override bool ReleaseHandle()
    {
        NativeMethods.llama_free(handle);
        _model?.DangerousRelease();
        return true;
    }
}

/// <summary>Owns a sampler chain (the chain frees the samplers added to it).</summary>
internal sealed class SafeLlamaSamplerHandle : SafeHandle
{
    public SafeLlamaSamplerHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The chain is llama.cpp's greedy sampler alone (no bias, penalties or grammar): the highest logit wins, and accepting a token changes nothing.</summary>
    public bool GreedyOnly { get; set; }

    /// <summary>Samplers in the chain.</summary>
    public int Count { get; private set; }

    public static SafeLlamaSamplerHandle CreateChain()
    {
        var p = NativeMethods.llama_sampler_chain_default_params();
        p.NoPerf = 1;
        var h = new SafeLlamaSamplerHandle();
        h.SetHandle(NativeMethods.llama_sampler_chain_init(p));
        return h;
    }

    /// <summary>Adds a sampler to the chain, which takes ownership; a null sampler means llama.cpp refused its parameters.</summary>
    public void Add(IntPtr sampler, string what)
    {
        if (sampler == IntPtr.Zero)
        {
            throw new ArgumentException($"llama.cpp refused the {what} sampler parameters");
        }

        NativeMethods.llama_sampler_chain_add(this, sampler);
        Count++;
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.llama_sampler_free(handle);
        return true;
    }
}
