using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Engine;

/// <summary>What a side context (embeddings, prompt scoring) shares with the serving context: the model and the CPU threads.</summary>
internal sealed record NativeContexts(SafeLlamaModelHandle Model, EngineOptions Options, CpuThreadpool? Threadpool, CpuThreadpool? BatchThreadpool)
{
    /// <summary>A context with the engine's thread counts and threadpools and <paramref name="configure"/>'s settings.</summary>
    public SafeLlamaContextHandle Create(Func<LlamaContextParams, LlamaContextParams> configure)
    {
        var cp = NativeMethods.llama_context_default_params();
        cp.NThreads = Options.Threads;
        cp.NThreadsBatch = Options.BatchThreads > 0 ? Options.BatchThreads : Options.Threads;
        cp.NoPerf = 1;
        cp.Embeddings = 0;
        var ctx = SafeLlamaContextHandle.Create(Model, configure(cp));
        ctx.Attach(Threadpool, BatchThreadpool);
        return ctx;
    }
}
