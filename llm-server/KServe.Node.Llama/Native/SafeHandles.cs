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

    protected override bool ReleaseHandle()
    {
        NativeMethods.llama_model_free(handle);
        return true;
    }
}

/// <summary>Owns a <c>llama_context</c>; holds a reference on its model so the model outlives it.</summary>
internal sealed class SafeLlamaContextHandle : SafeHandle
{
    private SafeLlamaModelHandle? _model;

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
        return h;
    }

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
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.llama_sampler_free(handle);
        return true;
    }
}
