namespace KServe.Node.Gguf.Tests;

public sealed class GgufTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gguf-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("llama-spm", "llama", 32000)]
    [InlineData("gpt-2", "gpt2", 50257)]
    [InlineData("qwen2", "gpt2", 151936)]
    public void Reads_real_vocabulary_files(string name, string tokenizer, int minTokens)
    {
        var file = GgufFile.Read(RepoPaths.Vocab(name));

        Assert.Equal(tokenizer, file.GetString("tokenizer.ggml.model"));
        var tokens = Assert.IsType<GgufArray>(file.Get("tokenizer.ggml.tokens"));
        Assert.Equal(GgufValueType.String, tokens.ElementType);
        Assert.True(tokens.Count >= minTokens, $"{tokens.Count} tokens");
        Assert.Empty(file.Tensors);
    }

    [Fact]
    public void Round_trips_every_value_type_and_tensor_data()
    {
        var path = Path.Combine(_dir, "all.gguf");
        var data = Enumerable.Range(0, 64).Select(i => (byte)i).ToArray();
        new GgufWriter()
            .AddValue("u8", (byte)7).AddValue("i8", (sbyte)-7).AddValue("u16", (ushort)700).AddValue("i16", (short)-700)
            .AddValue("u32", 70000u).AddValue("i32", -70000).AddValue("f32", 1.5f).AddValue("b", true)
            .AddValue("s", "héllo").AddValue("u64", ulong.MaxValue).AddValue("i64", long.MinValue).AddValue("f64", Math.PI)
            .Add("arr.s", new GgufArray(GgufValueType.String, new[] { "a", "", "ü" }))
            .Add("arr.i", new GgufArray(GgufValueType.Int32, new[] { 1, -2, 3 }))
            .Add("arr.nested", new GgufArray(GgufValueType.Array, new[] { new GgufArray(GgufValueType.Float32, new[] { 1f, 2f }) }))
            .AddTensor("t1", [16], GgmlType.F32, s => s.Write(data))
            .AddTensor("t2", [32, 1], GgmlType.Q8_0, s => s.Write(data.AsSpan(0, 34)))
            .Write(path);

        var file = GgufFile.Read(path);

        Assert.Equal(3u, file.Version);
        Assert.Equal((byte)7, file.Get("u8"));
        Assert.Equal((sbyte)-7, file.Get("i8"));
        Assert.Equal((ushort)700, file.Get("u16"));
        Assert.Equal((short)-700, file.Get("i16"));
        Assert.Equal(70000u, file.Get("u32"));
        Assert.Equal(-70000, file.Get("i32"));
        Assert.Equal(1.5f, file.Get("f32"));
        Assert.Equal(true, file.Get("b"));
        Assert.Equal("héllo", file.GetString("s"));
        Assert.Equal(ulong.MaxValue, file.Get("u64"));
        Assert.Equal(long.MinValue, file.Get("i64"));
        Assert.Equal(Math.PI, file.Get("f64"));
        Assert.Equal(new[] { "a", "", "ü" }, Assert.IsType<GgufArray>(file.Get("arr.s")).Values);
        Assert.Equal(new[] { 1, -2, 3 }, Assert.IsType<GgufArray>(file.Get("arr.i")).Values);
        var nested = Assert.IsType<GgufArray[]>(Assert.IsType<GgufArray>(file.Get("arr.nested")).Values);
        Assert.Equal(new[] { 1f, 2f }, nested[0].Values);
        Assert.Equal(2, file.Tensors.Count);
        Assert.Equal(0, file.DataOffset % 32);
        Assert.Equal(64, file.Tensors[0].ByteSize);
        Assert.Equal(34, file.Tensors[1].ByteSize);
        Assert.Equal(0ul, file.Tensors[0].Offset);
        Assert.Equal(64ul, file.Tensors[1].Offset);
        Assert.Equal(data, GgufFile.ReadTensorData(path, file, file.Tensors[0]));
        Assert.Equal(data[..34], GgufFile.ReadTensorData(path, file, file.Tensors[1]));
    }

    [Fact]
    public void Generated_model_reports_its_facts_and_carries_the_real_vocabulary()
    {
        var path = Path.Combine(_dir, "tiny.gguf");
        var spec = new GeneratedModelSpec { Layers = 2, EmbeddingLength = 64, FeedForwardLength = 128, Heads = 4, HeadsKv = 2, ContextLength = 2048 };

        var facts = TestModelGenerator.GenerateLlama(path, RepoPaths.Vocab("llama-spm"), spec);

        Assert.Equal("llama", facts.Architecture);
        Assert.Equal("F32", facts.Quantization);
        Assert.Equal(2048, facts.ContextLength);
        Assert.Equal(64, facts.EmbeddingLength);
        Assert.Equal(2, facts.BlockCount);
        Assert.Equal(4, facts.HeadCount);
        Assert.Equal(2, facts.HeadCountKv);
        Assert.Equal(16, facts.KeyLength);
        Assert.Equal(32000, facts.VocabSize);
        Assert.Equal("llama", facts.TokenizerModel);
        Assert.Equal(TestModelGenerator.ParameterCount(spec, 32000), facts.ParameterCount);
        Assert.Equal(facts.ParameterCount * 4, facts.TensorBytes);
        // 2 layers x 2 KV heads x (16 + 16) x 2 bytes
        Assert.Equal(256, facts.KvBytesPerToken());
        Assert.True(new FileInfo(path).Length >= facts.TensorBytes);
        var file = GgufFile.Read(path);
        Assert.Equal(
            GgufFile.Read(RepoPaths.Vocab("llama-spm")).Get("tokenizer.ggml.scores") is GgufArray s ? s.Values : null,
            Assert.IsType<GgufArray>(file.Get("tokenizer.ggml.scores")).Values);
    }

    [Fact]
    public void Generation_is_deterministic_and_F16_halves_the_bytes()
    {
        var a = Path.Combine(_dir, "a.gguf");
        var b = Path.Combine(_dir, "b.gguf");
        var c = Path.Combine(_dir, "c.gguf");
        var spec = new GeneratedModelSpec { Layers = 1, EmbeddingLength = 32, FeedForwardLength = 64, Heads = 2, HeadsKv = 2 };
        TestModelGenerator.GenerateLlama(a, RepoPaths.Vocab("gpt-2"), spec);
        TestModelGenerator.GenerateLlama(b, RepoPaths.Vocab("gpt-2"), spec);
        var f16 = TestModelGenerator.GenerateLlama(c, RepoPaths.Vocab("gpt-2"), spec with { WeightType = GeneratedWeightType.F16 });

        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.Equal("F16", f16.Quantization);
        var norms = 3 * 32 * 4L;
        Assert.Equal((f16.ParameterCount * 4 - norms) / 2 + norms, f16.TensorBytes);
    }

    [Fact]
    public void Rejects_a_file_that_is_not_gguf()
    {
        var path = Path.Combine(_dir, "bad.gguf");
        File.WriteAllText(path, "this is not a model");

        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Read(path));
        Assert.Contains("not a GGUF file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rejects_a_truncated_file_naming_it()
    {
        var full = File.ReadAllBytes(RepoPaths.Vocab("llama-spm"));
        var path = Path.Combine(_dir, "cut.gguf");
        File.WriteAllBytes(path, full[..(full.Length / 3)]);

        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Read(path));
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        Assert.Contains("cut.gguf", e.Message, StringComparison.Ordinal);
    }
}
