using System.Text;

namespace KServe.Node.Gguf;

/// <summary>
/// Writes GGUF version 3 files: metadata, then the tensor table, then the aligned tensor data.
/// Tensor data is produced by a callback at write time so that large files stream without being held in memory.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, (GgufValueType Type, object Value)>> _metadata = [];
    private readonly List<(GgufTensorInfo Info, Action<Stream> WriteData)> _tensors = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);
    private ulong _nextOffset;

    /// <summary>Alignment of the tensor data section and of every tensor in it.</summary>
    public int Alignment { get; init; } = GgufFile.DefaultAlignment;

    public GgufWriter Add(string key, string value) => AddRaw(key, GgufValueType.String, value);
    public GgufWriter Add(string key, uint value) => AddRaw(key, GgufValueType.UInt32, value);
    public GgufWriter Add(string key, int value) => AddRaw(key, GgufValueType.Int32, value);
    public GgufWriter Add(string key, ulong value) => AddRaw(key, GgufValueType.UInt64, value);
    public GgufWriter Add(string key, float value) => AddRaw(key, GgufValueType.Float32, value);
    public GgufWriter Add(string key, bool value) => AddRaw(key, GgufValueType.Bool, value);
    public GgufWriter Add(string key, GgufArray value) => AddRaw(key, GgufValueType.Array, value);

    /// <summary>Adds a metadata value as read by <see cref="GgufFile"/> (the CLR type picks the GGUF type).</summary>
    public GgufWriter AddValue(string key, object value) => value switch
    {
        byte v => AddRaw(key, GgufValueType.UInt8, v),
        sbyte v => AddRaw(key, GgufValueType.Int8, v),
        ushort v => AddRaw(key, GgufValueType.UInt16, v),
        short v => AddRaw(key, GgufValueType.Int16, v),
        uint v => AddRaw(key, GgufValueType.UInt32, v),
        int v => AddRaw(key, GgufValueType.Int32, v),
        float v => AddRaw(key, GgufValueType.Float32, v),
        bool v => AddRaw(key, GgufValueType.Bool, v),
        string v => AddRaw(key, GgufValueType.String, v),
        ulong v => AddRaw(key, GgufValueType.UInt64, v),
        long v => AddRaw(key, GgufValueType.Int64, v),
        double v => AddRaw(key, GgufValueType.Float64, v),
        GgufArray v => AddRaw(key, GgufValueType.Array, v),
        _ => throw new ArgumentException($"metadata '{key}' has unsupported type {value?.GetType().Name ?? "null"}", nameof(value)),
    };

    /// <summary>Adds a tensor whose <paramref name="writeData"/> callback writes exactly its byte size.</summary>
    public GgufWriter AddTensor(string name, long[] dimensions, GgmlType type, Action<Stream> writeData)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(dimensions);
        ArgumentNullException.ThrowIfNull(writeData);
        if (!_tensorNames.Add(name))
        {
            throw new ArgumentException($"tensor '{name}' was added twice", nameof(name));
        }

        var info = new GgufTensorInfo(name, dimensions, type, _nextOffset);
        _tensors.Add((info, writeData));
        _nextOffset = Align(_nextOffset + (ulong)info.ByteSize, (ulong)Alignment);
        return this;
    }

    /// <summary>Writes the file atomically (a temporary file beside it, then a rename).</summary>
    public void Write(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Write(fs);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp))
            {
                File.Delete(tmp);
            }
        }
    }

    /// <summary>Writes the file to a stream.</summary>
    public void Write(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        var alignmentKey = Alignment != GgufFile.DefaultAlignment && !_keys.Contains("general.alignment");
        w.Write((ulong)(_metadata.Count + (alignmentKey ? 1 : 0)));
        if (alignmentKey)
        {
            WriteString(w, "general.alignment");
            w.Write((uint)GgufValueType.UInt32);
            w.Write((uint)Alignment);
        }

        foreach (var (key, (type, value)) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)type);
            WriteValue(w, type, value);
        }

        foreach (var (info, _) in _tensors)
        {
            WriteString(w, info.Name);
            w.Write((uint)info.Dimensions.Length);
            foreach (var d in info.Dimensions)
            {
                w.Write((ulong)d);
            }

            w.Write((uint)info.Type);
            w.Write(info.Offset);
        }

        w.Flush();
        var written = 0L;
        Pad(w, ref written, headerPosition: true);
        foreach (var (info, writeData) in _tensors)
        {
            var before = stream.Position;
            writeData(stream);
            var n = stream.Position - before;
            if (n != info.ByteSize)
            {
                throw new InvalidOperationException($"tensor '{info.Name}' wrote {n} bytes, expected {info.ByteSize}");
            }

            written += n;
            Pad(w, ref written, headerPosition: false);
        }

        w.Flush();
    }

    private void Pad(BinaryWriter w, ref long written, bool headerPosition)
    {
        var pos = headerPosition ? w.BaseStream.Position : written;
        var pad = (int)((ulong)Alignment - ((ulong)pos % (ulong)Alignment)) % Alignment;
        for (var i = 0; i < pad; i++)
        {
            w.Write((byte)0);
        }

        if (!headerPosition)
        {
            written += pad;
        }
    }

    private GgufWriter AddRaw(string key, GgufValueType type, object value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (!_keys.Add(key))
        {
            throw new ArgumentException($"metadata key '{key}' was added twice", nameof(key));
        }

        _metadata.Add(new(key, (type, value)));
        return this;
    }

    private static ulong Align(ulong x, ulong a) => (x + a - 1) / a * a;

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)value); break;
            case GgufValueType.Int8: w.Write((sbyte)value); break;
            case GgufValueType.UInt16: w.Write((ushort)value); break;
            case GgufValueType.Int16: w.Write((short)value); break;
            case GgufValueType.UInt32: w.Write((uint)value); break;
            case GgufValueType.Int32: w.Write((int)value); break;
            case GgufValueType.Float32: w.Write((float)value); break;
            case GgufValueType.Bool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt64: w.Write((ulong)value); break;
            case GgufValueType.Int64: w.Write((long)value); break;
            case GgufValueType.Float64: w.Write((double)value); break;
            case GgufValueType.Array:
                var arr = (GgufArray)value;
                w.Write((uint)arr.ElementType);
                w.Write((ulong)arr.Count);
                foreach (var item in arr.Values)
                {
                    WriteValue(w, arr.ElementType, item!);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "unknown GGUF value type");
        }
    }
}
