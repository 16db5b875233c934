using System.Runtime.InteropServices;

namespace KServe.Node.Llama.Native;

/// <summary>The subset of llama.cpp's C API (include/llama.h, ggml-backend.h) that the engine uses.</summary>
internal static unsafe partial class NativeMethods
{
    internal const string Llama = "llama";
    internal const string Ggml = "ggml";
    internal const string GgmlBase = "ggml-base";

    [LibraryImport(Llama)] internal static partial IntPtr llama_print_system_info();
    [LibraryImport(Llama)] internal static partial void llama_backend_init();
    [LibraryImport(Llama)] internal static partial void llama_log_set(delegate* unmanaged[Cdecl]<int, byte*, void*, void> callback, void* userData);
    [LibraryImport(Llama)] internal static partial LlamaModelParams llama_model_default_params();
    [LibraryImport(Llama)] internal static partial LlamaContextParams llama_context_default_params();
    [LibraryImport(Llama)] internal static partial LlamaSamplerChainParams llama_sampler_chain_default_params();
    [LibraryImport(Llama)] internal static partial nuint llama_max_parallel_sequences();

    [LibraryImport(Llama)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool llama_supports_gpu_offload();

    [LibraryImport(Llama, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial IntPtr llama_model_load_from_file(string path, LlamaModelParams parameters);

    [LibraryImport(Llama)] internal static partial void llama_model_free(IntPtr model);
    [LibraryImport(Llama)] internal static partial IntPtr llama_init_from_model(SafeLlamaModelHandle model, LlamaContextParams parameters);
    [LibraryImport(Llama)] internal static partial void llama_free(IntPtr ctx);

    [LibraryImport(Llama)] internal static partial uint llama_n_ctx(SafeLlamaContextHandle ctx);
    [LibraryImport(Llama)] internal static partial uint llama_n_seq_max(SafeLlamaContextHandle ctx);
    [LibraryImport(Llama)] internal static partial IntPtr llama_get_memory(SafeLlamaContextHandle ctx);

    [LibraryImport(Llama)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool llama_model_is_recurrent(SafeLlamaModelHandle model);

    [LibraryImport(Llama)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool llama_model_is_hybrid(SafeLlamaModelHandle model);

    [LibraryImport(Llama)] internal static partial IntPtr llama_model_get_vocab(SafeLlamaModelHandle model);
    [LibraryImport(Llama)] internal static partial int llama_model_n_ctx_train(SafeLlamaModelHandle model);
    [LibraryImport(Llama)] internal static partial int llama_model_n_embd(SafeLlamaModelHandle model);
    [LibraryImport(Llama)] internal static partial int llama_model_desc(SafeLlamaModelHandle model, byte* buf, nuint bufSize);
    [LibraryImport(Llama)] internal static partial IntPtr llama_model_chat_template(SafeLlamaModelHandle model, byte* name);

    [LibraryImport(Llama)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool llama_model_has_decoder(SafeLlamaModelHandle model);

    [LibraryImport(Llama)] internal static partial int llama_vocab_n_tokens(IntPtr vocab);
    [LibraryImport(Llama)] internal static partial int llama_vocab_bos(IntPtr vocab);
    [LibraryImport(Llama)] internal static partial int llama_vocab_eos(IntPtr vocab);
    [LibraryImport(Llama)] internal static partial int llama_vocab_fim_pre(IntPtr vocab);
    [LibraryImport(Llama)] internal static partial int llama_vocab_fim_suf(IntPtr vocab);
    [LibraryImport(Llama)] internal static partial int llama_vocab_fim_mid(IntPtr vocab);

    [LibraryImport(Llama)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool llama_vocab_is_eog(IntPtr vocab, int token);

    [LibraryImport(Llama)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool llama_vocab_get_add_bos(IntPtr vocab);

    [LibraryImport(Llama)]
    internal static partial int llama_tokenize(IntPtr vocab, byte* text, int textLen, int* tokens, int nTokensMax,
        [MarshalAs(UnmanagedType.U1)] bool addSpecial, [MarshalAs(UnmanagedType.U1)] bool parseSpecial);

    [LibraryImport(Llama)]
    internal static partial int llama_token_to_piece(IntPtr vocab, int token, byte* buf, int length, int lstrip, [MarshalAs(UnmanagedType.U1)] bool special);

    [LibraryImport(Llama)]
    internal static partial int llama_detokenize(IntPtr vocab, int* tokens, int nTokens, byte* text, int textLenMax,
        [MarshalAs(UnmanagedType.U1)] bool removeSpecial, [MarshalAs(UnmanagedType.U1)] bool unparseSpecial);

    [LibraryImport(Llama)] internal static partial void llama_memory_clear(IntPtr mem, [MarshalAs(UnmanagedType.U1)] bool data);

    [LibraryImport(Llama)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool llama_memory_seq_rm(IntPtr mem, int seqId, int p0, int p1);

    [LibraryImport(Llama)] internal static partial void llama_memory_seq_cp(IntPtr mem, int src, int dst, int p0, int p1);
    [LibraryImport(Llama)] internal static partial int llama_memory_seq_pos_max(IntPtr mem, int seqId);

    [LibraryImport(Llama)] internal static partial LlamaBatch llama_batch_init(int nTokens, int embd, int nSeqMax);
    [LibraryImport(Llama)] internal static partial void llama_batch_free(LlamaBatch batch);
    [LibraryImport(Llama)] internal static partial int llama_decode(SafeLlamaContextHandle ctx, LlamaBatch batch);

    /// <summary>ggml calls <paramref name="callback"/> between graph nodes; true aborts the decode (it returns 2).</summary>
    [LibraryImport(Llama)] internal static partial void llama_set_abort_callback(SafeLlamaContextHandle ctx, delegate* unmanaged[Cdecl]<IntPtr, byte> callback, IntPtr data);
    [LibraryImport(Llama)] internal static partial void llama_attach_threadpool(SafeLlamaContextHandle ctx, IntPtr threadpool, IntPtr threadpoolBatch);
    [LibraryImport(Llama)] internal static partial float* llama_get_logits_ith(SafeLlamaContextHandle ctx, int i);
    [LibraryImport(Llama)] internal static partial float* llama_get_embeddings_seq(SafeLlamaContextHandle ctx, int seqId);

    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_chain_init(LlamaSamplerChainParams parameters);
    [LibraryImport(Llama)] internal static partial void llama_sampler_chain_add(SafeLlamaSamplerHandle chain, IntPtr sampler);
    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_init_greedy();
    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_init_dist(uint seed);
    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_init_top_k(int k);
    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_init_top_p(float p, nuint minKeep);
    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_init_min_p(float p, nuint minKeep);
    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_init_temp(float t);
    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_init_typical(float p, nuint minKeep);
    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_init_penalties(int nVocab, int lastN, float repeat, float freq, float present);
    [LibraryImport(Llama)] internal static partial IntPtr llama_sampler_init_logit_bias(int nVocab, int nLogitBias, LlamaLogitBias* logitBias);

    [LibraryImport(Llama, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial IntPtr llama_sampler_init_grammar(IntPtr vocab, string grammar, string root);

    [LibraryImport(Llama)] internal static partial void llama_sampler_apply(SafeLlamaSamplerHandle sampler, LlamaTokenDataArray* candidates);
    [LibraryImport(Llama)] internal static partial void llama_sampler_accept(SafeLlamaSamplerHandle sampler, int token);
    [LibraryImport(Llama)] internal static partial void llama_sampler_free(IntPtr sampler);

    [LibraryImport(Ggml, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial void ggml_backend_load_all_from_path(string dir);

    [LibraryImport(Ggml)] internal static partial nuint ggml_backend_dev_count();
    [LibraryImport(Ggml)] internal static partial IntPtr ggml_backend_dev_by_type(int type);
    [LibraryImport(GgmlBase)] internal static partial IntPtr ggml_backend_dev_backend_reg(IntPtr device);

    [LibraryImport(GgmlBase, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial IntPtr ggml_backend_reg_get_proc_address(IntPtr reg, string name);

    [LibraryImport(GgmlBase)] internal static partial void ggml_threadpool_params_init(out GgmlThreadpoolParams parameters, int nThreads);
    [LibraryImport(Ggml)] internal static partial IntPtr ggml_backend_dev_get(nuint index);
    [LibraryImport(GgmlBase)] internal static partial IntPtr ggml_backend_dev_name(IntPtr device);
    [LibraryImport(GgmlBase)] internal static partial IntPtr ggml_backend_dev_description(IntPtr device);
    [LibraryImport(GgmlBase)] internal static partial int ggml_backend_dev_type(IntPtr device);
    [LibraryImport(GgmlBase)] internal static partial void ggml_backend_dev_memory(IntPtr device, nuint* free, nuint* total);
}
