using System.Text;

namespace KServe.Node.Gguf;

/// <summary>One tensor's entry in a GGUF file's header.</summary>
/// <param name="Name">Tensor name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Dimensions">ggml order: the first dimension varies fastest.</param>
/// <param name="Type">Element type.</param>
/// <param name="Offset">Offset of the data relative to the start of the data section.</param>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, GgmlType Type, ulong Offset)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Dimensions)
            {
                n *= d;
            }

            return n;
        }
    }

    /// <summary>Bytes of data the tensor occupies.</summary>
    public long ByteSize => GgmlTypeInfo.ByteSize(Type, ElementCount);
}

/// <summary>The header of a GGUF file: metadata and tensor table (the tensor data is not read).</summary>
public sealed class GgufFile
{
    /// <summary>GGUF magic: the bytes "GGUF" read as a little-endian uint.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Default alignment of the data section when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    private GgufFile(uint version, Dictionary<string, object> metadata, List<GgufTensorInfo> tensors, long dataOffset, int alignment)
    {
        Version = version;
        Metadata = metadata;
        Tensors = tensors;
        DataOffset = dataOffset;
        Alignment = alignment;
    }

    /// <summary>Format version (2 or 3).</summary>
    public uint Version { get; }

    /// <summary>Metadata in file order. Values are CLR primitives, <see cref="string"/> or <see cref="GgufArray"/>.</summary>
    public IReadOnlyDictionary<string, object> Metadata { get; }

    /// <summary>Tensor table in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Absolute file offset of the tensor data section.</summary>
    public long DataOffset { get; }

    /// <summary>Alignment of tensor data.</summary>
    public int Alignment { get; }

    /// <summary>Reads the header of a GGUF file.</summary>
    /// <exception cref="GgufFormatException">The file is not GGUF or is truncated/corrupt.</exception>
    public static GgufFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        try
        {
            return Read(stream);
        }
        catch (EndOfStreamException e)
        {
            throw new GgufFormatException($"'{path}' is truncated: the GGUF header ends early", e);
        }
        catch (GgufFormatException e)
        {
            throw new GgufFormatException($"'{path}': {e.Message}", e);
        }
    }

    /// <summary>Reads a GGUF header from a stream positioned at the file's start.</summary>
    public static GgufFile Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        var magic = r.ReadUInt32();
        if (magic != Magic)
        {
            throw new GgufFormatException($"not a GGUF file (magic 0x{magic:x8})");
        }

        var version = r.ReadUInt32();
        if (version is < 2 or > 3)
        {
            throw new GgufFormatException($"unsupported GGUF version {version}");
        }

        var tensorCount = CheckedCount(r.ReadUInt64(), "tensor count");
        var kvCount = CheckedCount(r.ReadUInt64(), "metadata count");
        var metadata = new Dictionary<string, object>(kvCount, StringComparer.Ordinal);
        for (var i = 0; i < kvCount; i++)
        {
            var key = ReadString(r);
            var type = (GgufValueType)r.ReadUInt32();
            metadata[key] = ReadValue(r, type);
        }

        var tensors = new List<GgufTensorInfo>(tensorCount);
        for (var i = 0; i < tensorCount; i++)
        {
            var name = ReadString(r);
            var nDims = r.ReadUInt32();
            if (nDims > 8)
            {
                throw new GgufFormatException($"tensor '{name}' has {nDims} dimensions");
            }

            var dims = new long[nDims];
            for (var d = 0; d < nDims; d++)
            {
                dims[d] = checked((long)r.ReadUInt64());
            }

            var type = (GgmlType)r.ReadUInt32();
            _ = GgmlTypeInfo.Geometry(type);
            tensors.Add(new GgufTensorInfo(name, dims, type, r.ReadUInt64()));
        }

        var alignment = metadata.TryGetValue("general.alignment", out var a) ? Convert.ToInt32(a, System.Globalization.CultureInfo.InvariantCulture) : DefaultAlignment;
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
        {
            throw new GgufFormatException($"general.alignment {alignment} is not a power of two");
        }

        var pos = stream.Position;
        var dataOffset = (pos + alignment - 1) / alignment * alignment;
        return new GgufFile(version, metadata, tensors, dataOffset, alignment);
    }

    /// <summary>Reads the raw bytes of one tensor.</summary>
    public static byte[] ReadTensorData(string path, GgufFile file, GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(tensor);
        using var stream = File.OpenRead(path);
        stream.Position = file.DataOffset + (long)tensor.Offset;
        var data = new byte[tensor.ByteSize];
        stream.ReadExactly(data);
        return data;
    }

    /// <summary>The metadata value of <paramref name="key"/>, or null.</summary>
    public object? Get(string key) => Metadata.TryGetValue(key, out var v) ? v : null;

    /// <summary>A string metadata value, or null when absent or not a string.</summary>
    public string? GetString(string key) => Get(key) as string;

    /// <summary>An integer metadata value (any integer type; for an array, its maximum), or null.</summary>
    public long? GetInteger(string key) => Get(key) switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        ulong v => checked((long)v),
        long v => v,
        GgufArray { Count: > 0 } arr when arr.ElementType is not (GgufValueType.String or GgufValueType.Array or GgufValueType.Float32 or GgufValueType.Float64 or GgufValueType.Bool)
            => arr.Values.Cast<object>().Max(o => Convert.ToInt64(o, System.Globalization.CultureInfo.InvariantCulture)),
        _ => null,
    };

    /// <summary>Facts about the model described by this file.</summary>
    public ModelFacts Facts => ModelFacts.From(this);

    private static int CheckedCount(ulong n, string what) =>
        n > int.MaxValue ? throw new GgufFormatException($"{what} {n} is implausible") : (int)n;

    private static string ReadString(BinaryReader r)
    {
        var len = r.ReadUInt64();
        if (len > 64 * 1024 * 1024)
        {
            throw new GgufFormatException($"string length {len} is implausible");
        }

        var bytes = r.ReadBytes((int)len);
        if (bytes.Length != (int)len)
        {
            throw new EndOfStreamException();
        }

        return Encoding.UTF8.GetString(bytes);
    }

    private static object ReadValue(BinaryReader r, GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => r.ReadByte(),
        GgufValueType.Int8 => r.ReadSByte(),
        GgufValueType.UInt16 => r.ReadUInt16(),
        GgufValueType.Int16 => r.ReadInt16(),
        GgufValueType.UInt32 => r.ReadUInt32(),
        GgufValueType.Int32 => r.ReadInt32(),
        GgufValueType.Float32 => r.ReadSingle(),
        GgufValueType.Bool => r.ReadByte() != 0,
        GgufValueType.String => ReadString(r),
        GgufValueType.UInt64 => r.ReadUInt64(),
        GgufValueType.Int64 => r.ReadInt64(),
        GgufValueType.Float64 => r.ReadDouble(),
        GgufValueType.Array => ReadArray(r),
        _ => throw new GgufFormatException($"unknown metadata value type {(uint)type}"),
    };

    private static GgufArray ReadArray(BinaryReader r)
    {
        var type = (GgufValueType)r.ReadUInt32();
        var count = CheckedCount(r.ReadUInt64(), "array length");
        Array values = type switch
        {
            GgufValueType.UInt8 => r.ReadBytes(count),
            GgufValueType.Int8 => Fill<sbyte>(count, r, static x => x.ReadSByte()),
            GgufValueType.UInt16 => Fill<ushort>(count, r, static x => x.ReadUInt16()),
            GgufValueType.Int16 => Fill<short>(count, r, static x => x.ReadInt16()),
            GgufValueType.UInt32 => Fill<uint>(count, r, static x => x.ReadUInt32()),
            GgufValueType.Int32 => Fill<int>(count, r, static x => x.ReadInt32()),
            GgufValueType.Float32 => Fill<float>(count, r, static x => x.ReadSingle()),
            GgufValueType.Bool => Fill<bool>(count, r, static x => x.ReadByte() != 0),
            GgufValueType.String => Fill<string>(count, r, ReadString),
            GgufValueType.UInt64 => Fill<ulong>(count, r, static x => x.ReadUInt64()),
            GgufValueType.Int64 => Fill<long>(count, r, static x => x.ReadInt64()),
            GgufValueType.Float64 => Fill<double>(count, r, static x => x.ReadDouble()),
            GgufValueType.Array => Fill<GgufArray>(count, r, ReadArray),
            _ => throw new GgufFormatException($"unknown array element type {(uint)type}"),
        };
        if (type == GgufValueType.UInt8 && values.Length != count)
        {
            throw new EndOfStreamException();
        }

        return new GgufArray(type, values);
    }

    private static T[] Fill<T>(int count, BinaryReader r, Func<BinaryReader, T> read)
    {
        var a = new T[count];
        for (var i = 0; i < count; i++)
        {
            a[i] = read(r);
        }

        return a;
    }
}
