namespace KServe.Node.Gguf;

/// <summary>Metadata value types of the GGUF format (version 3).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>A typed GGUF array value: the element type and the elements (a CLR array of the matching type).</summary>
/// <param name="ElementType">The GGUF type of the elements.</param>
/// <param name="Values">The elements: byte[], sbyte[], ushort[], short[], uint[], int[], float[], bool[], string[], ulong[], long[], double[] or GgufArray[].</param>
public sealed record GgufArray(GgufValueType ElementType, Array Values)
{
    public int Count => Values.Length;
}

/// <summary>The file is not a valid GGUF file, or uses something this reader does not support.</summary>
public sealed class GgufFormatException : Exception
{
    public GgufFormatException() { }
    public GgufFormatException(string message) : base(message) { }
    public GgufFormatException(string message, Exception inner) : base(message, inner) { }
}
