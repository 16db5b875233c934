using System.Diagnostics;
using System.Text.Json;
using KServe.Node.Llama;
using KServe.Node.LlmServer.Api;
using KServe.Node.LlmServer.Metrics;
using KServe.Node.LlmServer.Serving;
using Microsoft.AspNetCore.Http;

namespace KServe.Node.LlmServer.Generation;

/// <summary><c>/v1/completions</c>: a text or token prompt as is; answers as text_completion, with echo and legacy logprobs.</summary>
internal sealed class CompletionDialect : IGenerationDialect
{
    public static CompletionDialect Instance { get; } = new();

    public string IdPrefix => "cmpl-";

    public string PromptParam => "prompt";

    public ParsedRequest Parse(JsonElement root) => GenerationRequestParser.ParseCompletion(root);

    public (string Text, int[] Tokens) BuildPrompt(ModelService service, LlamaEngine engine, ParsedRequest request)
    {
        if (request.PromptTokens is not { } ids)
        {
            return (request.Prompt!, engine.Tokenize(request.Prompt!, addSpecial: true, parseSpecial: true));
        }
        foreach (var t in ids.Where(t => t >= engine.Model.VocabSize))
        {
            throw ApiException.Invalid("prompt", $"Token id {t} in 'prompt' is outside the vocabulary (size {engine.Model.VocabSize}).");
        }
        return (engine.Detokenize(ids), ids);
    }

    public ToolCallFormat? ToolFormat(ModelService service, ParsedRequest request) => null;

    /// <summary>Never: a completion continues a raw prompt, and vLLM's reasoning parsers serve chat only.</summary>
    public bool SplitsReasoning(ModelService service, ParsedRequest request, string prompt) => false;

    public Answer CreateAnswer(AnswerContext context) => new CompletionAnswer(context);
}

/// <summary>A text completion answer; with <c>echo</c> each choice starts with the prompt (and its own logprobs).</summary>
internal sealed class CompletionAnswer(AnswerContext context) : Answer(context)
{
    /// <summary>The prompt's own logprobs, for echo with logprobs.</summary>
    private LegacyLogprobs? _echoLogprobs;

    private string Echo => Request.Echo ? Context.Prepared.PromptText : "";

    private Task ChunkAsync(SseWriter sse, CompletionChoice[] choices, Usage? usage, CancellationToken ct) =>
        sse.WriteAsync(Completion(choices, usage), ApiJsonContext.Wire.TextCompletion, ct);

    private TextCompletion Completion(CompletionChoice[] choices, Usage? usage) =>
        new(Context.Id, "text_completion", Context.Created, Context.Model, GenerationCore.Fingerprint, choices, usage);

    public override async Task BeforeGenerationAsync(CancellationToken ct)
    {
        if (Request.Echo && Request.Logprobs)
        {
            var engine = Context.Prepared.Engine;
            var tokens = Context.Prepared.Generation.PromptTokens;
            _echoLogprobs = PromptLogprobs(engine, tokens, await engine.ScorePromptAsync(tokens, Request.TopLogprobs, ct).ConfigureAwait(false));
        }
    }

    /// <summary>max_tokens 0: nothing to generate; the answer is the echoed prompt (and its logprobs), streamed or not.</summary>
    public override async Task WithoutGenerationAsync(HttpContext ctx, VllmMetrics metrics, long start, CancellationToken ct)
    {
        var prompt = Context.Prepared.Generation.PromptTokens.Length;
        var usage = new Usage(prompt, 0, prompt, new PromptTokensDetails(0));
        var choices = Enumerable.Range(0, Request.N).Select(i => new CompletionChoice(i, Echo, _echoLogprobs, "length")).ToArray();
        metrics.RequestFinished(prompt, 0, 0, "length");
        metrics.E2e.Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        if (!Request.Stream)
        {
            await HttpHelpers.WriteJsonAsync(ctx, 200, Completion(choices, usage), ApiJsonContext.Wire.TextCompletion).ConfigureAwait(false);
            return;
        }
        using var sse = new SseWriter(ctx.Response);
        await sse.StartAsync(ct).ConfigureAwait(false);
        foreach (var c in choices)
        {
            await ChunkAsync(sse, [c], null, ct).ConfigureAwait(false);
        }
        if (Request.IncludeUsage)
        {
            await UsageAsync(sse, usage, ct).ConfigureAwait(false);
        }
        await sse.WriteDoneAsync(ct).ConfigureAwait(false);
    }

    public override async Task OpenStreamAsync(SseWriter sse, int choices, CancellationToken ct)
    {
        if (!Request.Echo)
        {
            return;
        }
        // Echo streams too: each choice opens with the prompt (and its logprobs), as the non-streamed answer does.
        for (var i = 0; i < choices; i++)
        {
            await ChunkAsync(sse, [new CompletionChoice(i, Echo, _echoLogprobs, null)], null, ct).ConfigureAwait(false);
        }
    }

    public override async Task<bool> TokenAsync(SseWriter sse, ChoiceState choice, TokenEvent token, bool withLogprob, Usage? runningUsage, CancellationToken ct)
    {
        if (token.Text.Length == 0 && !withLogprob)
        {
            return false;
        }
        var logprobs = withLogprob ? Legacy([choice.Logprobs[^1]], Echo.Length) : null;
        await ChunkAsync(sse, [new CompletionChoice(choice.Index, token.Text, logprobs, null)], runningUsage, ct).ConfigureAwait(false);
        return true;
    }

    public override Task FinishAsync(SseWriter sse, ChoiceState choice, FinishedEvent finished, CancellationToken ct) =>
        ChunkAsync(sse, [new CompletionChoice(choice.Index, "", null, Reason(finished.Reason))], null, ct);

    public override Task UsageAsync(SseWriter sse, Usage usage, CancellationToken ct) => ChunkAsync(sse, [], usage, ct);

    public override Task WriteAsync(HttpContext ctx, ChoiceState[] choices, Usage usage)
    {
        var echo = Echo;
        var answers = choices.Select(s => new CompletionChoice(s.Index, echo + s.Text,
            Request.Logprobs ? Legacy(s.Logprobs, echo.Length, _echoLogprobs) : null, Reason(s.Finished!.Reason))).ToArray();
        return HttpHelpers.WriteJsonAsync(ctx, 200, Completion(answers, usage), ApiJsonContext.Wire.TextCompletion);
    }

    /// <summary>Generated tokens in the legacy shape, after the echoed prompt's (whose text is <paramref name="offset"/> long).</summary>
    private LegacyLogprobs Legacy(IReadOnlyList<(TokenEvent Token, int Offset)> tokens, int offset, LegacyLogprobs? echo = null)
    {
        var engine = Context.Prepared.Engine;
        var texts = tokens.Select(l => engine.TokenText(l.Token.TokenId)).ToArray();
        return new LegacyLogprobs(
            [.. echo?.Tokens ?? [], .. texts],
            [.. echo?.TokenLogprobs ?? [], .. tokens.Select(l => l.Token.Logprob)],
            [.. echo?.TopLogprobs ?? [], .. tokens.Select(l => (Dictionary<string, float>?)Top(l.Token.TopLogprobs ?? []))],
            [.. echo?.TextOffset ?? [], .. tokens.Select(l => l.Offset + offset)]);
    }

    private static Dictionary<string, float> Top(IEnumerable<Llama.TokenLogprob> alternatives)
    {
        var top = new Dictionary<string, float>(StringComparer.Ordinal);
        foreach (var a in alternatives)
        {
            top.TryAdd(a.Text, a.Logprob);
        }
        return top;
    }

    /// <summary>
    /// The prompt's tokens with their logprobs as OpenAI's legacy echo gives them: the first token has none, each
    /// later one its log-probability given the tokens before it; the alternatives include the token itself.
    /// </summary>
    private static LegacyLogprobs PromptLogprobs(LlamaEngine engine, int[] tokens, PromptTokenLogprob[] scored)
    {
        var texts = new string[tokens.Length];
        var offsets = new int[tokens.Length];
        var lps = new float?[tokens.Length];
        var tops = new Dictionary<string, float>?[tokens.Length];
        var offset = 0;
        for (var i = 0; i < tokens.Length; i++)
        {
            texts[i] = engine.TokenText(tokens[i], special: false);
            offsets[i] = offset;
            offset += texts[i].Length;
            if (i == 0)
            {
                continue;
            }
            var s = scored[i - 1];
            lps[i] = s.Logprob;
            var top = Top(s.Top);
            if (s.Top.Count > 0)
            {
                top.TryAdd(texts[i], s.Logprob);
            }
            tops[i] = top;
        }
        return new LegacyLogprobs(texts, lps, tops, offsets);
    }
}
