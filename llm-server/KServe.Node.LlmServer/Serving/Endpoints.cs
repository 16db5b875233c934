using System.Text.Json;
using KServe.Node.Hosting;
using KServe.Node.Llama;
using KServe.Node.LlmServer.Api;
using KServe.Node.LlmServer.Generation;
using KServe.Node.LlmServer.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KServe.Node.LlmServer.Serving;

/// <summary>The route table: OpenAI routes under /v1 and /openai/v1, llama-server's utility routes, KServe health, metrics.</summary>
internal static class Endpoints
{
    public static IEndpointRouteBuilder MapLlmServer(this IEndpointRouteBuilder app)
    {
        foreach (var prefix in new[] { "/v1", "/openai/v1" })
        {
            var g = app.MapGroup(prefix);
            g.MapPost("/chat/completions", (HttpContext ctx, GenerationCore core) => core.RunAsync(ctx, ChatDialect.Instance));
            g.MapPost("/completions", (HttpContext ctx, GenerationCore core) => core.RunAsync(ctx, CompletionDialect.Instance));
            g.MapGet("/models", ListModels);
            g.MapGet("/models/{**id}", GetModel); // served names such as org/model hold slashes
            g.MapPost("/embeddings", EmbeddingsAsync);
        }
        app.MapPost("/tokenize", TokenizeAsync);
        app.MapPost("/detokenize", DetokenizeAsync);
        app.MapPost("/apply-template", ApplyTemplateAsync);
        app.MapGet("/v2/health/live", (HttpContext ctx) => HttpHelpers.WriteJsonAsync(ctx, 200, new LiveResponse(true), ApiJsonContext.Wire.LiveResponse));
        app.MapGet("/v2/health/ready", (HttpContext ctx, ModelService s) =>
            HttpHelpers.WriteJsonAsync(ctx, s.IsReady ? 200 : 503, new ReadyResponse(s.IsReady), ApiJsonContext.Wire.ReadyResponse));
        app.MapGet("/v2/models/{name}/ready", ModelReady);
        app.MapGet("/health", (HttpContext ctx, ModelService s) => HttpHelpers.WriteJsonAsync(ctx, s.IsReady ? 200 : 503,
            new HealthResponse(s.State switch { ModelState.Ready => "ok", ModelState.Loading => "loading", _ => "failed" }), ApiJsonContext.Wire.HealthResponse));
        app.MapGet("/", (HttpContext ctx) => HttpHelpers.WriteJsonAsync(ctx, 200, new HealthResponse("alive"), ApiJsonContext.Wire.HealthResponse));
        app.MapMetricsEndpoint("/metrics");
        app.MapFallback((HttpContext ctx) => HttpHelpers.WriteErrorAsync(ctx, ApiException.NotFound(GenerationRequestParser.Truncate(ctx.Request.Path.ToString()))));
        return app;
    }

    private static ModelCard Card(ModelService s) =>
        new(s.ServedName, "model", s.Created, "kserve-node", s.ServedName, s.IsReady, s.IsReady ? s.Engine.Model.ContextSize : 0);

    private static Task ListModels(HttpContext ctx, ModelService s) =>
        HttpHelpers.WriteJsonAsync(ctx, 200, new ModelList("list", [Card(s)]), ApiJsonContext.Wire.ModelList);

    private static Task GetModel(HttpContext ctx, ModelService s, string id)
    {
        if (!string.Equals(id, s.ServedName, StringComparison.Ordinal))
        {
            throw ApiException.ModelNotFound(GenerationRequestParser.Truncate(id));
        }
        return HttpHelpers.WriteJsonAsync(ctx, s.IsReady ? 200 : 503, Card(s), ApiJsonContext.Wire.ModelCard);
    }

    private static Task ModelReady(HttpContext ctx, ModelService s, string name)
    {
        if (!string.Equals(name, s.ServedName, StringComparison.Ordinal))
        {
            throw new ApiException(404, $"Model with name {GenerationRequestParser.Truncate(name)} does not exist.", "invalid_request_error", null, "model_not_found");
        }
        return HttpHelpers.WriteJsonAsync(ctx, s.IsReady ? 200 : 503, new ModelReadyResponse(s.ServedName, s.IsReady), ApiJsonContext.Wire.ModelReadyResponse);
    }

    private static async Task<JsonDocument> ReadJsonAsync(HttpContext ctx)
    {
        var limit = ctx.RequestServices.GetRequiredService<IOptions<LlmServerOptions>>().Value.MaxRequestBytes;
        return GenerationRequestParser.ParseBody(await HttpHelpers.ReadBodyAsync(ctx, limit).ConfigureAwait(false));
    }

    private static async Task<EmbeddingsRequest> ReadEmbeddingsAsync(HttpContext ctx, ModelService s, GenerationCore gen)
    {
        var body = await HttpHelpers.ReadBodyAsync(ctx, gen.Options.MaxRequestBytes).ConfigureAwait(false);
        s.CheckQueue();
        using var doc = GenerationRequestParser.ParseBody(body);
        var root = doc.RootElement;
        var model = root.TryGetProperty("model", out var m) ? m.ValueKind == JsonValueKind.String ? m.GetString()! : throw ApiException.WrongType("model", "a string") : "";
        if (!root.TryGetProperty("input", out var input) || input.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.Missing("input");
        }
        var texts = new List<string>();
        var tokenInputs = new List<int[]>();
        switch (input.ValueKind)
        {
            case JsonValueKind.String:
                texts.Add(input.GetString()!);
                break;
            case JsonValueKind.Array when input.GetArrayLength() > 0 && input.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String):
                texts.AddRange(input.EnumerateArray().Select(e => e.GetString()!));
                break;
            case JsonValueKind.Array when input.GetArrayLength() > 0 && input.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number):
                tokenInputs.Add(ReadTokens(input, "input"));
                break;
            case JsonValueKind.Array when input.GetArrayLength() > 0 && input.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Array):
                tokenInputs.AddRange(input.EnumerateArray().Select(e => ReadTokens(e, "input")));
                break;
            default:
                throw ApiException.WrongType("input", "a string, an array of strings, or token arrays");
        }
        if (texts.Count + tokenInputs.Count > 2048)
        {
            throw ApiException.Invalid("input", "'input' may hold at most 2048 items.");
        }
        var base64 = EncodingFormat(root);
        var dimensions = root.TryGetProperty("dimensions", out var dim) && dim.ValueKind != JsonValueKind.Null
            ? dim.ValueKind == JsonValueKind.Number && dim.TryGetInt32(out var d) && d > 0 ? d : throw ApiException.WrongType("dimensions", "a positive integer")
            : (int?)null;
        gen.CheckModel(model);
        var engine = s.Engine;
        if (!engine.Model.SupportsEmbeddings)
        {
            throw ApiException.Invalid("model", $"The model `{s.ServedName}` does not support embeddings (it has no pooling; start it with embeddings enabled on a model that pools).");
        }
        if (dimensions is { } wanted && wanted != engine.Model.EmbeddingSize)
        {
            var allowed = gen.Options.MatryoshkaDimensions;
            if (allowed.Count == 0)
            {
                throw ApiException.Invalid("dimensions", $"The model `{s.ServedName}` does not support Matryoshka truncation: 'dimensions' can only be its embedding size {engine.Model.EmbeddingSize} (start the server with --matryoshka-dimensions for a model trained for it).");
            }
            if (!allowed.Contains(wanted) || wanted > engine.Model.EmbeddingSize)
            {
                throw ApiException.Invalid("dimensions", $"'dimensions' {wanted} is not supported by `{s.ServedName}`; it supports {string.Join(", ", allowed.Where(a => a < engine.Model.EmbeddingSize).Append(engine.Model.EmbeddingSize).Distinct().Order())}.");
            }
        }
        var inputs = texts.Select(t => engine.Tokenize(t, addSpecial: true, parseSpecial: false)).Concat(tokenInputs).ToList();
        foreach (var t in inputs)
        {
            if (t.Length == 0)
            {
                throw ApiException.Invalid("input", "'input' must not be empty.");
            }
            GenerationRequestParser.CheckVocabulary(engine.Model.VocabSize, t, "input");
        }
        return new EmbeddingsRequest(engine, inputs, base64, dimensions);
    }

    /// <summary>An embeddings request read and tokenized: what the engine embeds and how the answer is written.</summary>
    private sealed record EmbeddingsRequest(LlamaEngine Engine, List<int[]> Inputs, bool Base64, int? Dimensions);

    private static async Task EmbeddingsAsync(HttpContext ctx, ModelService s, GenerationCore gen)
    {
        EmbeddingsRequest request;
        using (await s.EnterPreparationAsync(ctx.RequestAborted).ConfigureAwait(false))
        {
            request = await ReadEmbeddingsAsync(ctx, s, gen).ConfigureAwait(false);
        }
        var (engine, inputs, base64, dimensions) = request;
        float[][] vectors;
        using (s.Enter())
        {
            try
            {
                vectors = await engine.EmbedAsync(inputs, ctx.RequestAborted).ConfigureAwait(false);
            }
            catch (EngineOverloadedException)
            {
                throw ApiException.QueueFull(1);
            }
            catch (NotSupportedException e)
            {
                throw ApiException.Invalid("model", e.Message);
            }
            catch (ArgumentException e)
            {
                throw ApiException.Invalid("input", e.Message);
            }
        }
        if (dimensions is { } size && size < engine.Model.EmbeddingSize)
        {
            vectors = vectors.Select(v => Truncated(v, size)).ToArray();
        }
        var total = inputs.Sum(t => t.Length);
        var usage = new EmbeddingUsage(total, total);
        if (base64)
        {
            await HttpHelpers.WriteJsonAsync(ctx, 200,
                new EmbeddingListBase64("list", vectors.Select((v, i) => new EmbeddingItemBase64("embedding", i, Base64(v))).ToArray(), s.ServedName, usage),
                ApiJsonContext.Wire.EmbeddingListBase64).ConfigureAwait(false);
            return;
        }
        await HttpHelpers.WriteJsonAsync(ctx, 200,
            new EmbeddingList("list", vectors.Select((v, i) => new EmbeddingItem("embedding", i, v)).ToArray(), s.ServedName, usage),
            ApiJsonContext.Wire.EmbeddingList).ConfigureAwait(false);
    }

    /// <summary>OpenAI's two encodings; the SDKs ask for base64 unless told otherwise.</summary>
    private static bool EncodingFormat(JsonElement root)
    {
        if (!root.TryGetProperty("encoding_format", out var fmt) || fmt.ValueKind == JsonValueKind.Null)
        {
            return false;
        }
        return fmt.ValueKind == JsonValueKind.String ? fmt.GetString() switch
        {
            "float" => false,
            "base64" => true,
            _ => throw ApiException.Invalid("encoding_format", "'encoding_format' must be 'float' or 'base64'."),
        } : throw ApiException.WrongType("encoding_format", "a string");
    }

    /// <summary>A Matryoshka vector cut to its first <paramref name="size"/> components and normalised again (as vLLM does).</summary>
    internal static float[] Truncated(float[] v, int size)
    {
        var cut = v.AsSpan(0, size).ToArray();
        var norm = Math.Sqrt(cut.Sum(x => (double)x * x));
        if (norm > 0)
        {
            for (var i = 0; i < cut.Length; i++)
            {
                cut[i] = (float)(cut[i] / norm);
            }
        }
        return cut;
    }

    /// <summary>The float32 values as little-endian bytes, base64 (what OpenAI sends and its SDKs decode).</summary>
    internal static string Base64(float[] v)
    {
        var bytes = new byte[v.Length * sizeof(float)];
        for (var i = 0; i < v.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), v[i]);
        }
        return Convert.ToBase64String(bytes);
    }

    private static int[] ReadTokens(JsonElement array, string param)
    {
        if (array.ValueKind != JsonValueKind.Array)
        {
            throw ApiException.WrongType(param, "an array of token ids");
        }
        var tokens = new int[array.GetArrayLength()];
        var i = 0;
        foreach (var e in array.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var t))
            {
                throw ApiException.WrongType(param, "an array of token ids");
            }
            tokens[i++] = t;
        }
        return tokens;
    }

    private static async Task TokenizeAsync(HttpContext ctx, ModelService s)
    {
        using var doc = await ReadJsonAsync(ctx).ConfigureAwait(false);
        var root = doc.RootElement;
        if (!root.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.Missing("content");
        }
        if (content.ValueKind != JsonValueKind.String)
        {
            throw ApiException.WrongType("content", "a string");
        }
        var addSpecial = Bool(root, "add_special") ?? false;
        var parseSpecial = Bool(root, "parse_special") ?? true;
        var tokens = s.Engine.Tokenize(content.GetString()!, addSpecial, parseSpecial);
        await HttpHelpers.WriteJsonAsync(ctx, 200, new TokenizeResponse(tokens), ApiJsonContext.Wire.TokenizeResponse).ConfigureAwait(false);
    }

    private static async Task DetokenizeAsync(HttpContext ctx, ModelService s)
    {
        using var doc = await ReadJsonAsync(ctx).ConfigureAwait(false);
        if (!doc.RootElement.TryGetProperty("tokens", out var t) || t.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.Missing("tokens");
        }
        var tokens = ReadTokens(t, "tokens");
        var engine = s.Engine;
        GenerationRequestParser.CheckVocabulary(engine.Model.VocabSize, tokens, "tokens");
        await HttpHelpers.WriteJsonAsync(ctx, 200, new DetokenizeResponse(engine.Detokenize(tokens)), ApiJsonContext.Wire.DetokenizeResponse).ConfigureAwait(false);
    }

    private static async Task ApplyTemplateAsync(HttpContext ctx, ModelService s)
    {
        using var doc = await ReadJsonAsync(ctx).ConfigureAwait(false);
        var request = GenerationRequestParser.ParseChat(doc.RootElement);
        var prompt = ChatDialect.Render(s, s.Engine, request);
        await HttpHelpers.WriteJsonAsync(ctx, 200, new ApplyTemplateResponse(prompt), ApiJsonContext.Wire.ApplyTemplateResponse).ConfigureAwait(false);
    }

    private static bool? Bool(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.WrongType(name, "a boolean"),
        };
}
