using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using OpenAI;
using OpenAI.Embeddings;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>The tiny model served with two Matryoshka sizes declared.</summary>
public sealed class MatryoshkaServerFixture : IAsyncLifetime
{
    public RunningServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await RunningServer.StartAsync(["--matryoshka-dimensions", "16", "--matryoshka-dimensions", "32"]);

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}

/// <summary>Embeddings as the SDKs call them: base64 by default, every input form, dimensions, batched decodes.</summary>
public sealed class EmbeddingsTests(MatryoshkaServerFixture fixture, ServerFixture plain) : IClassFixture<MatryoshkaServerFixture>, IClassFixture<ServerFixture>
{
    private RunningServer S => fixture.Server;

    /// <summary>Keeps the bodies of every request and answer the client exchanged.</summary>
    private sealed class Recorder : DelegatingHandler
    {
        public List<(string Request, string Response)> Exchanges { get; } = [];

        public Recorder() : base(new HttpClientHandler()) { }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            var sent = request.Content is null ? "" : await request.Content.ReadAsStringAsync(ct);
            var response = await base.SendAsync(request, ct);
            var received = await response.Content.ReadAsStringAsync(ct);
            Exchanges.Add((sent, received));
            return response;
        }
    }

    private async Task<float[][]> FloatsAsync(string inputJson, string extra = "")
    {
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/embeddings", $"{{\"model\":\"tiny\",\"input\":{inputJson}{extra}}}");
        Assert.Equal(200, status);
        return body!.RootElement.GetProperty("data").EnumerateArray()
            .Select(d => d.GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray()).ToArray();
    }

    private static float[] Decode(string base64)
    {
        var bytes = Convert.FromBase64String(base64);
        var v = new float[bytes.Length / 4];
        for (var i = 0; i < v.Length; i++)
        {
            v[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
        }
        return v;
    }

    private static void Close(float[] expected, float[] actual, double tolerance = 1e-4)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"component {i}: {expected[i]} vs {actual[i]}");
        }
    }

    [Fact]
    public async Task The_official_client_default_call_gets_base64_on_the_wire_equal_to_the_float_answer()
    {
        var recorder = new Recorder();
        var options = new OpenAIClientOptions { Endpoint = new Uri(S.BaseAddress, "v1"), Transport = new HttpClientPipelineTransport(new HttpClient(recorder)) };
        var client = new EmbeddingClient(RunningServer.ModelName, new ApiKeyCredential("unused"), options);
        OpenAIEmbeddingCollection result = await client.GenerateEmbeddingsAsync(["a cat sat on the mat", "a dog"]);

        var (sent, received) = Assert.Single(recorder.Exchanges);
        using (var req = JsonDocument.Parse(sent))
        {
            Assert.Equal("base64", req.RootElement.GetProperty("encoding_format").GetString());
        }
        var floats = await FloatsAsync("[\"a cat sat on the mat\",\"a dog\"]");
        using var wire = JsonDocument.Parse(received);
        var data = wire.RootElement.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(2, data.Count);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(i, data[i].GetProperty("index").GetInt32());
            Assert.Equal(JsonValueKind.String, data[i].GetProperty("embedding").ValueKind);
            // Same engine, same inputs: the bytes on the wire carry exactly the float answer.
            Assert.Equal(floats[i], Decode(data[i].GetProperty("embedding").GetString()!));
            Assert.Equal(floats[i], result[i].ToFloats().ToArray());
        }
    }

    [Fact]
    public async Task Raw_base64_and_float_answers_carry_the_same_values()
    {
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/embeddings", "{\"model\":\"tiny\",\"input\":\"hello world\",\"encoding_format\":\"base64\"}");
        Assert.Equal(200, status);
        var b64 = body!.RootElement.GetProperty("data")[0].GetProperty("embedding").GetString()!;
        var floats = await FloatsAsync("\"hello world\"", ",\"encoding_format\":\"float\"");
        Assert.Equal(S.Model.Engine.Model.EmbeddingSize * 4, Convert.FromBase64String(b64).Length);
        Assert.Equal(floats[0], Decode(b64));
        var (bad, badBody, _) = await Raw.PostAsync(S.Http, "v1/embeddings", "{\"model\":\"tiny\",\"input\":\"x\",\"encoding_format\":\"int8\"}");
        Assert.Equal(400, bad);
        Raw.AssertError(badBody, "encoding_format");
    }

    [Fact]
    public async Task Every_input_form_gives_the_vector_of_the_same_tokens()
    {
        using var tok = await S.Http.PostAsync("tokenize", Raw.Json("{\"content\":\"a cat\",\"add_special\":true}"));
        using var tokDoc = JsonDocument.Parse(await tok.Content.ReadAsStringAsync());
        var ids = tokDoc.RootElement.GetProperty("tokens").GetRawText();
        var fromString = (await FloatsAsync("\"a cat\""))[0];
        var fromStrings = await FloatsAsync("[\"a cat\",\"a cat\"]");
        var fromTokens = (await FloatsAsync(ids))[0];
        var fromTokenArrays = await FloatsAsync($"[{ids},{ids}]");
        Close(fromString, fromTokens);
        Assert.Equal(2, fromStrings.Length);
        Assert.Equal(2, fromTokenArrays.Length);
        foreach (var v in fromStrings.Concat(fromTokenArrays))
        {
            Close(fromString, v);
        }
    }

    [Fact]
    public async Task A_batch_is_one_decode_and_equals_each_input_alone()
    {
        string[] texts = ["first input", "a much longer second input with more words in it", "third"];
        var alone = new List<float[]>();
        foreach (var t in texts)
        {
            alone.Add((await FloatsAsync(JsonSerializer.Serialize(t)))[0]);
        }
        var before = S.Model.Engine.EmbeddingDecodes;
        var batch = await FloatsAsync(JsonSerializer.Serialize(texts));
        Assert.Equal(1, S.Model.Engine.EmbeddingDecodes - before);
        for (var i = 0; i < texts.Length; i++)
        {
            Close(alone[i], batch[i], 1e-3);
        }
        Assert.NotEqual(batch[0], batch[1]);
    }

    [Fact]
    public async Task Dimensions_truncate_a_matryoshka_model_and_renormalise()
    {
        var full = (await FloatsAsync("\"matryoshka\""))[0];
        var cut = (await FloatsAsync("\"matryoshka\"", ",\"dimensions\":16"))[0];
        Assert.Equal(16, cut.Length);
        Assert.Equal(1.0, Math.Sqrt(cut.Sum(x => (double)x * x)), 4);
        var norm = Math.Sqrt(full.Take(16).Sum(x => (double)x * x));
        Close(full.Take(16).Select(x => (float)(x / norm)).ToArray(), cut, 1e-5);
        // The client's own option reaches the server too.
        var client = new EmbeddingClient(RunningServer.ModelName, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(S.BaseAddress, "v1") });
        OpenAIEmbedding viaClient = await client.GenerateEmbeddingAsync("matryoshka", new EmbeddingGenerationOptions { Dimensions = 32 });
        Assert.Equal(32, viaClient.ToFloats().Length);
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/embeddings", "{\"model\":\"tiny\",\"input\":\"x\",\"dimensions\":20}");
        Assert.Equal(400, status);
        Raw.AssertError(body, "dimensions");
    }

    [Fact]
    public async Task Dimensions_on_a_model_not_declared_matryoshka_is_a_400_naming_it()
    {
        var size = plain.Server.Model.Engine.Model.EmbeddingSize;
        var (status, body, _) = await Raw.PostAsync(plain.Server.Http, "v1/embeddings", "{\"model\":\"tiny\",\"input\":\"x\",\"dimensions\":16}");
        Assert.Equal(400, status);
        Raw.AssertError(body, "dimensions");
        var (same, sameBody, _) = await Raw.PostAsync(plain.Server.Http, "v1/embeddings", $"{{\"model\":\"tiny\",\"input\":\"x\",\"dimensions\":{size}}}");
        Assert.Equal(200, same);
        Assert.Equal(size, sameBody!.RootElement.GetProperty("data")[0].GetProperty("embedding").GetArrayLength());
    }
}
