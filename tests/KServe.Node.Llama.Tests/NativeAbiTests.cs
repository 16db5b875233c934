using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Tests;

/// <summary>Pins the binding's structs to the C layout of include/llama.h of the pinned llama.cpp.</summary>
public sealed class NativeAbiTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);

    [Fact]
    public void Struct_sizes_match_the_C_header()
    {
        Assert.Equal(80, Unsafe.SizeOf<LlamaModelParams>());
        Assert.Equal(160, Unsafe.SizeOf<LlamaContextParams>());
        Assert.Equal(56, Unsafe.SizeOf<LlamaBatch>());
        Assert.Equal(1, Unsafe.SizeOf<LlamaSamplerChainParams>());
        Assert.Equal(8, Unsafe.SizeOf<LlamaLogitBias>());
        Assert.Equal(528, Unsafe.SizeOf<GgmlThreadpoolParams>());
    }

    [Fact]
    public void Threadpool_params_match_the_C_header_and_defaults()
    {
        Assert.Equal(512, Offset<GgmlThreadpoolParams>(nameof(GgmlThreadpoolParams.NThreads)));
        Assert.Equal(516, Offset<GgmlThreadpoolParams>(nameof(GgmlThreadpoolParams.Priority)));
        Assert.Equal(520, Offset<GgmlThreadpoolParams>(nameof(GgmlThreadpoolParams.Poll)));
        Assert.Equal(524, Offset<GgmlThreadpoolParams>(nameof(GgmlThreadpoolParams.StrictCpu)));
        Assert.Equal(525, Offset<GgmlThreadpoolParams>(nameof(GgmlThreadpoolParams.Paused)));

        _ = fixture.Engine; // the fixture has loaded the library
        NativeMethods.ggml_threadpool_params_init(out var p, 3);
        Assert.Equal(3, p.NThreads);
        Assert.Equal(0, p.Priority);
        Assert.Equal(50u, p.Poll);
        Assert.Equal(0, p.StrictCpu);
        Assert.Equal(0, p.Paused);
    }

    [Fact]
    public void The_bundled_CPU_backend_reports_that_it_runs_without_OpenMP()
    {
        // The feature list is read through the backend registry; the bundled npm build has no OpenMP
        // (scripts/build-llama-cpu.sh builds libraries that have it).
        _ = fixture.Engine;
        Assert.Equal(false, LlamaNative.CpuUsesOpenMp());
    }

    [Fact]
    public void Model_params_offsets_match_the_C_header()
    {
        Assert.Equal(16, Offset<LlamaModelParams>(nameof(LlamaModelParams.NGpuLayers)));
        Assert.Equal(32, Offset<LlamaModelParams>(nameof(LlamaModelParams.MainGpu)));
        Assert.Equal(40, Offset<LlamaModelParams>(nameof(LlamaModelParams.TensorSplit)));
        Assert.Equal(64, Offset<LlamaModelParams>(nameof(LlamaModelParams.KvOverrides)));
        Assert.Equal(72, Offset<LlamaModelParams>(nameof(LlamaModelParams.VocabOnly)));
        Assert.Equal(77, Offset<LlamaModelParams>(nameof(LlamaModelParams.LoadMtp)));
    }

    [Fact]
    public void Context_params_offsets_match_the_C_header()
    {
        Assert.Equal(28, Offset<LlamaContextParams>(nameof(LlamaContextParams.NThreads)));
        Assert.Equal(44, Offset<LlamaContextParams>(nameof(LlamaContextParams.PoolingType)));
        Assert.Equal(52, Offset<LlamaContextParams>(nameof(LlamaContextParams.FlashAttnType)));
        Assert.Equal(84, Offset<LlamaContextParams>(nameof(LlamaContextParams.DefragThold)));
        Assert.Equal(88, Offset<LlamaContextParams>(nameof(LlamaContextParams.CbEval)));
        Assert.Equal(104, Offset<LlamaContextParams>(nameof(LlamaContextParams.TypeK)));
        Assert.Equal(112, Offset<LlamaContextParams>(nameof(LlamaContextParams.AbortCallback)));
        Assert.Equal(128, Offset<LlamaContextParams>(nameof(LlamaContextParams.Embeddings)));
        Assert.Equal(133, Offset<LlamaContextParams>(nameof(LlamaContextParams.KvUnified)));
        Assert.Equal(136, Offset<LlamaContextParams>(nameof(LlamaContextParams.Samplers)));
        Assert.Equal(144, Offset<LlamaContextParams>(nameof(LlamaContextParams.NSamplers)));
        Assert.Equal(152, Offset<LlamaContextParams>(nameof(LlamaContextParams.CtxOther)));
    }

    [Fact]
    public void Batch_offsets_match_the_C_header()
    {
        Assert.Equal(8, Offset<LlamaBatch>(nameof(LlamaBatch.Token)));
        Assert.Equal(24, Offset<LlamaBatch>(nameof(LlamaBatch.Pos)));
        Assert.Equal(40, Offset<LlamaBatch>(nameof(LlamaBatch.SeqId)));
        Assert.Equal(48, Offset<LlamaBatch>(nameof(LlamaBatch.Logits)));
    }

    [Fact]
    public void Library_defaults_read_through_the_binding_are_the_documented_ones()
    {
        _ = fixture.Engine; // the fixture has loaded the library
        var cp = NativeMethods.llama_context_default_params();
        var mp = NativeMethods.llama_model_default_params();

        // Values from llama.cpp's llama_context_default_params / llama_model_default_params of this version.
        Assert.Equal(512u, cp.NCtx);
        Assert.Equal(2048u, cp.NBatch);
        Assert.Equal(512u, cp.NUbatch);
        Assert.Equal(1u, cp.NSeqMax);
        Assert.Equal(-1, cp.FlashAttnType);
        Assert.Equal(-1, cp.PoolingType);
        Assert.Equal(1, cp.TypeK); // GGML_TYPE_F16
        Assert.Equal(1, cp.OffloadKqv);
        Assert.Equal(1u, cp.NOutputsMaxPerSeq);
        Assert.Equal(-1f, cp.DefragThold);
        Assert.Equal(1, cp.NoPerf);
        Assert.Equal(1, cp.SwaFull);
        Assert.Equal(0, cp.KvUnified);
        Assert.Equal(IntPtr.Zero, cp.Samplers);
        Assert.Equal(-1, mp.NGpuLayers);
        Assert.Equal(1, mp.SplitMode);
        Assert.Equal(-1, mp.LoadMode);
        Assert.Equal(1, mp.LazyMode);
        Assert.Equal(0, mp.VocabOnly);
        Assert.Equal(1, mp.UseExtraBufts);
        Assert.Equal(0, mp.LoadMtp);
    }
}
