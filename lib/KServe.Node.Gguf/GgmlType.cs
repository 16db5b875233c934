namespace KServe.Node.Gguf;

/// <summary>Tensor element types of ggml, with the numeric values stored in GGUF files.</summary>
#pragma warning disable CA1707 // the names are ggml's own (Q4_K, IQ2_XXS), which users recognise
public enum GgmlType
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35,
    MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42,
}
#pragma warning restore CA1707

/// <summary>Block geometry of each ggml type (elements per block, bytes per block), as in gguf-py's GGML_QUANT_SIZES.</summary>
public static class GgmlTypeInfo
{
    private const int QkK = 256;

    /// <summary>Elements per block and bytes per block; throws for a type this reader does not know.</summary>
    public static (int BlockSize, int TypeSize) Geometry(GgmlType type) => type switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 => (1, 2),
        GgmlType.Q4_0 => (32, 2 + 16),
        GgmlType.Q4_1 => (32, 2 + 2 + 16),
        GgmlType.Q5_0 => (32, 2 + 4 + 16),
        GgmlType.Q5_1 => (32, 2 + 2 + 4 + 16),
        GgmlType.Q8_0 => (32, 2 + 32),
        GgmlType.Q8_1 => (32, 2 + 2 + 32),
        GgmlType.Q2_K => (QkK, 2 + 2 + QkK / 16 + QkK / 4),
        GgmlType.Q3_K => (QkK, 2 + QkK / 4 + QkK / 8 + 12),
        GgmlType.Q4_K => (QkK, 2 + 2 + QkK / 2 + 12),
        GgmlType.Q5_K => (QkK, 2 + 2 + QkK / 2 + QkK / 8 + 12),
        GgmlType.Q6_K => (QkK, 2 + QkK / 2 + QkK / 4 + QkK / 16),
        GgmlType.Q8_K => (QkK, 4 + QkK + QkK / 8),
        GgmlType.IQ2_XXS => (QkK, 2 + QkK / 4),
        GgmlType.IQ2_XS => (QkK, 2 + QkK / 4 + QkK / 32),
        GgmlType.IQ3_XXS => (QkK, 2 + QkK / 4 + QkK / 8),
        GgmlType.IQ1_S => (QkK, 2 + QkK / 8 + QkK / 16),
        GgmlType.IQ4_NL => (32, 2 + 16),
        GgmlType.IQ3_S => (QkK, 2 + QkK / 4 + QkK / 8 + QkK / 32 + 4),
        GgmlType.IQ2_S => (QkK, 2 + QkK / 4 + QkK / 16),
        GgmlType.IQ4_XS => (QkK, 2 + 2 + QkK / 2 + QkK / 64),
        GgmlType.I8 => (1, 1),
        GgmlType.I16 => (1, 2),
        GgmlType.I32 => (1, 4),
        GgmlType.I64 => (1, 8),
        GgmlType.F64 => (1, 8),
        GgmlType.IQ1_M => (QkK, QkK / 8 + QkK / 16 + QkK / 32),
        GgmlType.BF16 => (1, 2),
        GgmlType.TQ1_0 => (QkK, 2 + 4 * 13),
        GgmlType.TQ2_0 => (QkK, 2 + 64),
        GgmlType.MXFP4 => (32, 1 + 16),
        GgmlType.NVFP4 => (64, 4 + 32),
        GgmlType.Q1_0 => (128, 2 + 16),
        GgmlType.Q2_0 => (64, 2 + 16),
        _ => throw new GgufFormatException($"unknown ggml tensor type {(int)type}"),
    };

    /// <summary>Bytes that <paramref name="elements"/> elements of <paramref name="type"/> occupy.</summary>
    public static long ByteSize(GgmlType type, long elements)
    {
        var (block, size) = Geometry(type);
        if (elements % block != 0)
        {
            throw new GgufFormatException($"{elements} elements are not a multiple of the {type} block size {block}");
        }

        return elements / block * size;
    }
}
