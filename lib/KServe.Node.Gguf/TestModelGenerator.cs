using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace KServe.Node.Gguf;

/// <summary>Weight element type of a generated model.</summary>
public enum GeneratedWeightType
{
    F32 = 0,
    F16 = 1,
}

/// <summary>Shape of a generated llama-architecture model.</summary>
public sealed record GeneratedModelSpec
{
    public int Layers { get; init; } = 2;
    public int EmbeddingLength { get; init; } = 128;
    public int FeedForwardLength { get; init; } = 256;
    public int Heads { get; init; } = 4;
    public int HeadsKv { get; init; } = 4;
    public int ContextLength { get; init; } = 4096;
    public GeneratedWeightType WeightType { get; init; } = GeneratedWeightType.F32;
    public int Seed { get; init; } = 1234;

    /// <summary>When set, writes <c>llama.pooling_type</c> (1 = mean, 2 = cls, 3 = last) so the model pools embeddings by default.</summary>
    public int? PoolingType { get; init; }

    public string Name { get; init; } = "kserve-node-test";

    /// <summary>When set, written as <c>tokenizer.chat_template</c> (replacing the vocabulary file's own, if any).</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Weights are uniform in ±Scale/√fan_in; large enough that logits are well separated (no near-ties in greedy tests).</summary>
    public float Scale { get; init; } = 2.0f;

    /// <summary>Extra factor on the output projection: random models otherwise give nearly flat logits, whose near-ties
    /// flip greedy choices under harmless numeric differences (batch shape, f16 KV); sharp logits keep greedy tests exact.</summary>
    public float LogitScale { get; init; } = 12.0f;
}

/// <summary>
/// Generates small random-weight llama-architecture GGUF models with a real vocabulary copied from a
/// vocab-only GGUF (llama.cpp's <c>models/ggml-vocab-*.gguf</c>). Used by tests, benchmarks and the demo:
/// no trained weights are reachable here, and a real tokenizer keeps tokenization and detokenization honest.
/// </summary>
public static class TestModelGenerator
{
    /// <summary>Generates a model into <paramref name="path"/> (atomically) and returns its facts.</summary>
    public static ModelFacts GenerateLlama(string path, string vocabGgufPath, GeneratedModelSpec spec)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(vocabGgufPath);
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.EmbeddingLength % spec.Heads != 0 || spec.Heads % spec.HeadsKv != 0)
        {
            throw new ArgumentException("embedding length must divide by heads, and heads by KV heads", nameof(spec));
        }

        var vocab = GgufFile.Read(vocabGgufPath);
        if (vocab.Get("tokenizer.ggml.tokens") is not GgufArray tokens)
        {
            throw new GgufFormatException($"'{vocabGgufPath}' has no tokenizer.ggml.tokens");
        }

        var nVocab = tokens.Count;
        var nEmbd = spec.EmbeddingLength;
        var headDim = nEmbd / spec.Heads;
        var nEmbdKv = headDim * spec.HeadsKv;
        var type = spec.WeightType == GeneratedWeightType.F32 ? GgmlType.F32 : GgmlType.F16;

        var w = new GgufWriter();
        w.Add("general.architecture", "llama")
         .Add("general.name", spec.Name)
         .Add("general.file_type", (uint)spec.WeightType)
         .Add("general.quantization_version", 2u)
         .Add("llama.context_length", (uint)spec.ContextLength)
         .Add("llama.embedding_length", (uint)nEmbd)
         .Add("llama.block_count", (uint)spec.Layers)
         .Add("llama.feed_forward_length", (uint)spec.FeedForwardLength)
         .Add("llama.attention.head_count", (uint)spec.Heads)
         .Add("llama.attention.head_count_kv", (uint)spec.HeadsKv)
         .Add("llama.attention.layer_norm_rms_epsilon", 1e-5f)
         .Add("llama.rope.dimension_count", (uint)headDim)
         .Add("llama.rope.freq_base", 10000f)
         .Add("llama.vocab_size", (uint)nVocab);
        if (spec.PoolingType is { } pooling)
        {
            w.Add("llama.pooling_type", (uint)pooling);
        }

        foreach (var (key, value) in vocab.Metadata)
        {
            if (key.StartsWith("tokenizer.", StringComparison.Ordinal) && !(spec.ChatTemplate is not null && key == "tokenizer.chat_template"))
            {
                w.AddValue(key, value);
            }
        }

        if (spec.ChatTemplate is not null)
        {
            w.Add("tokenizer.chat_template", spec.ChatTemplate);
        }

        var seed = spec.Seed;
        void Matrix(string name, long cols, long rows, float factor = 1f) =>
            w.AddTensor(name, [cols, rows], type, s => WriteRandom(s, cols * rows, factor * spec.Scale / MathF.Sqrt(cols), type, seed ^ StableHash(name)));
        void Norm(string name) =>
            w.AddTensor(name, [nEmbd], GgmlType.F32, s => WriteConstant(s, nEmbd, 1.0f));

        Matrix("token_embd.weight", nEmbd, nVocab);
        for (var l = 0; l < spec.Layers; l++)
        {
            Norm($"blk.{l}.attn_norm.weight");
            Matrix($"blk.{l}.attn_q.weight", nEmbd, nEmbd);
            Matrix($"blk.{l}.attn_k.weight", nEmbd, nEmbdKv);
            Matrix($"blk.{l}.attn_v.weight", nEmbd, nEmbdKv);
            Matrix($"blk.{l}.attn_output.weight", nEmbd, nEmbd);
            Norm($"blk.{l}.ffn_norm.weight");
            Matrix($"blk.{l}.ffn_gate.weight", nEmbd, spec.FeedForwardLength);
            Matrix($"blk.{l}.ffn_down.weight", spec.FeedForwardLength, nEmbd);
            Matrix($"blk.{l}.ffn_up.weight", nEmbd, spec.FeedForwardLength);
        }

        Norm("output_norm.weight");
        Matrix("output.weight", nEmbd, nVocab, spec.LogitScale);
        w.Write(path);
        return GgufFile.Read(path).Facts;
    }

    /// <summary>Parameter count of the model <see cref="GenerateLlama"/> would write for <paramref name="spec"/> and a vocabulary of <paramref name="vocabSize"/>.</summary>
    public static long ParameterCount(GeneratedModelSpec spec, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(spec);
        long e = spec.EmbeddingLength, f = spec.FeedForwardLength, kv = e / spec.Heads * spec.HeadsKv;
        var perLayer = 2 * e + 2 * e * e + 2 * e * kv + 3 * e * f;
        return 2 * e * vocabSize + e + spec.Layers * perLayer;
    }

    // string.GetHashCode is randomised per process; weights must be the same in every run.
    private static int StableHash(string s)
    {
        var h = 2166136261u;
        foreach (var c in s)
        {
            h = (h ^ c) * 16777619u;
        }

        return (int)h;
    }

    private static void WriteConstant(Stream s, long count, float value)
    {
        var buf = new byte[count * 4];
        for (var i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(i * 4), value);
        }

        s.Write(buf);
    }

    private static void WriteRandom(Stream s, long count, float scale, GgmlType type, int seed)
    {
        // Deterministic across runs and platforms: a fixed xorshift generator rather than System.Random's unspecified algorithm.
        var state = (uint)seed | 1u;
        const int Chunk = 1 << 16;
        var floats = new float[Chunk];
        var halves = new Half[Chunk];
        for (long done = 0; done < count; done += Chunk)
        {
            var n = (int)Math.Min(Chunk, count - done);
            for (var i = 0; i < n; i++)
            {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                floats[i] = ((state >> 8) * (1.0f / (1 << 24)) * 2f - 1f) * scale;
            }

            if (type == GgmlType.F32)
            {
                s.Write(MemoryMarshal.AsBytes(floats.AsSpan(0, n)));
            }
            else
            {
                for (var i = 0; i < n; i++)
                {
                    halves[i] = (Half)floats[i];
                }

                s.Write(MemoryMarshal.AsBytes(halves.AsSpan(0, n)));
            }
        }
    }
}
