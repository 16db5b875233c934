namespace KServe.Node.Gguf;

/// <summary>What a GGUF file says about its model: enough to size the KV cache and report the model.</summary>
public sealed record ModelFacts
{
    /// <summary><c>general.architecture</c>, e.g. <c>llama</c>.</summary>
    public required string Architecture { get; init; }

    /// <summary><c>general.name</c>, when present.</summary>
    public string? Name { get; init; }

    /// <summary>Total number of tensor elements.</summary>
    public long ParameterCount { get; init; }

    /// <summary>File type name (llama.cpp's ftype), e.g. <c>F16</c> or <c>Q4_K_M</c>; guessed from the tensors when absent.</summary>
    public required string Quantization { get; init; }

    /// <summary>Training context length.</summary>
    public int ContextLength { get; init; }

    public int EmbeddingLength { get; init; }
    public int BlockCount { get; init; }
    public int FeedForwardLength { get; init; }
    public int HeadCount { get; init; }
    public int HeadCountKv { get; init; }

    /// <summary>Per-head key width (<c>attention.key_length</c>, else embedding / heads).</summary>
    public int KeyLength { get; init; }

    /// <summary>Per-head value width (<c>attention.value_length</c>, else embedding / heads).</summary>
    public int ValueLength { get; init; }

    /// <summary><c>tokenizer.chat_template</c>, when present.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary><c>tokenizer.ggml.model</c>, e.g. <c>llama</c> or <c>gpt2</c>.</summary>
    public string? TokenizerModel { get; init; }

    /// <summary>Bytes of all tensor data.</summary>
    public long TensorBytes { get; init; }

    /// <summary>Number of vocabulary entries.</summary>
    public int VocabSize { get; init; }

    /// <summary><c>{arch}.pooling_type</c> when present (embedding models).</summary>
    public int? PoolingType { get; init; }

    /// <summary>Bytes of KV cache one token needs across all layers, for an element size of <paramref name="bytesPerElement"/> (2 = f16; q8_0 ≈ 34/32).</summary>
    public double KvBytesPerToken(double bytesPerElement = 2.0) =>
        (double)BlockCount * HeadCountKv * (KeyLength + ValueLength) * bytesPerElement;

    /// <summary>Reads the facts from a parsed header.</summary>
    public static ModelFacts From(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var arch = file.GetString("general.architecture") ?? throw new GgufFormatException("general.architecture is missing");
        int I(string key, int fallback = 0) => (int)(file.GetInteger($"{arch}.{key}") ?? fallback);
        var embd = I("embedding_length");
        var heads = I("attention.head_count");
        var headsKv = I("attention.head_count_kv", heads);
        var headDim = heads > 0 ? embd / heads : 0;
        long parameters = 0, bytes = 0;
        foreach (var t in file.Tensors)
        {
            parameters += t.ElementCount;
            bytes += t.ByteSize;
        }

        var fileType = file.GetInteger("general.file_type");
        return new ModelFacts
        {
            Architecture = arch,
            Name = file.GetString("general.name"),
            ParameterCount = parameters,
            Quantization = fileType is { } ft ? FileTypeName((int)ft) : GuessQuantization(file),
            ContextLength = I("context_length"),
            EmbeddingLength = embd,
            BlockCount = I("block_count"),
            FeedForwardLength = I("feed_forward_length"),
            HeadCount = heads,
            HeadCountKv = headsKv,
            KeyLength = I("attention.key_length", headDim),
            ValueLength = I("attention.value_length", headDim),
            ChatTemplate = file.GetString("tokenizer.chat_template"),
            TokenizerModel = file.GetString("tokenizer.ggml.model"),
            TensorBytes = bytes,
            VocabSize = file.Get("tokenizer.ggml.tokens") is GgufArray tokens ? tokens.Count : 0,
            PoolingType = file.GetInteger($"{arch}.pooling_type") is { } p ? (int)p : null,
        };
    }

    /// <summary>llama.cpp's name for a <c>general.file_type</c> value (llama_ftype).</summary>
    public static string FileTypeName(int fileType) => fileType switch
    {
        0 => "F32", 1 => "F16", 2 => "Q4_0", 3 => "Q4_1", 7 => "Q8_0", 8 => "Q5_0", 9 => "Q5_1",
        10 => "Q2_K", 11 => "Q3_K_S", 12 => "Q3_K_M", 13 => "Q3_K_L", 14 => "Q4_K_S", 15 => "Q4_K_M",
        16 => "Q5_K_S", 17 => "Q5_K_M", 18 => "Q6_K", 19 => "IQ2_XXS", 20 => "IQ2_XS", 21 => "Q2_K_S",
        22 => "IQ3_XS", 23 => "IQ3_XXS", 24 => "IQ1_S", 25 => "IQ4_NL", 26 => "IQ3_S", 27 => "IQ3_M",
        28 => "IQ2_S", 29 => "IQ2_M", 30 => "IQ4_XS", 31 => "IQ1_M", 32 => "BF16", 36 => "TQ1_0",
        37 => "TQ2_0", 38 => "MXFP4_MOE", 39 => "NVFP4", 40 => "Q1_0", 41 => "Q2_0",
        _ => $"ftype-{fileType}",
    };

    private static string GuessQuantization(GgufFile file)
    {
        // The type holding most bytes among the 2-D tensors is what a user would call the quantization.
        var best = file.Tensors.Where(t => t.Dimensions.Length >= 2)
            .GroupBy(t => t.Type)
            .Select(g => (g.Key, Bytes: g.Sum(t => t.ByteSize)))
            .OrderByDescending(g => g.Bytes)
            .FirstOrDefault();
        return file.Tensors.Count == 0 ? "none" : best.Key.ToString();
    }
}
