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

    public IReadOnlyList<(string Text, int[] Tokens)> BuildPrompts(ModelService service, LlamaEngine engine, ParsedRequest request) =>
        [.. request.Prompts.Select(p => Build(engine, p, request.Suffix))];

    /// <summary>
    /// One prompt's tokens; with a suffix, llama-server's fill-in-the-middle order
    /// <c>[BOS] FIM_PRE prompt FIM_SUF suffix FIM_MID</c>, the answer being the middle.
    /// </summary>
    private static (string Text, int[] Tokens) Build(LlamaEngine engine, PromptInput prompt, string? suffix)
    {
        var info = engine.Model;
        GenerationRequestParser.CheckVocabulary(info.VocabSize, prompt.Tokens ?? [], "prompt");
        // A token prompt's text (what echo shows) leaves special tokens out, as its echoed logprobs do.
        var text = prompt.Text ?? engine.Detokenize(prompt.Tokens!, special: false);
        if (suffix is null)
        {
            return (text, prompt.Tokens ?? engine.Tokenize(text, addSpecial: true, parseSpecial: true));
        }
        if (info.Fim is not { } fim)
        {
            throw ApiException.Invalid("suffix", $"'suffix' needs a model with fill-in-the-middle tokens; `{info.Name}` has none.");
        }
        int[] bos = info.AddBos ? [info.BosTokenId] : [];
        int[] tokens = [.. bos, fim.Prefix, .. prompt.Tokens ?? engine.Tokenize(text, addSpecial: false, parseSpecial: false),
            fim.Suffix, .. engine.Tokenize(suffix, addSpecial: false, parseSpecial: false), fim.Middle];
        return (text, tokens);
    }

    public ToolCallFormat? ToolFormat(ModelService service, ParsedRequest request) => null;

    /// <summary>Never: a completion continues a raw prompt, and vLLM's reasoning parsers serve chat only.</summary>
    public bool SplitsReasoning(ModelService service, ParsedRequest request, string prompt) => false;

    public Answer CreateAnswer(AnswerContext context) => new CompletionAnswer(context);
}

/// <summary>A text completion answer; with <c>echo</c> each choice starts with its prompt (and the prompt's own logprobs).</summary>
internal sealed class CompletionAnswer(AnswerContext context) : Answer(context)
{
    /// <summary>Each prompt's own logprobs, for echo with logprobs.</summary>
    private readonly LegacyLogprobs?[] _echoLogprobs = new LegacyLogprobs?[context.Prepared.Prompts.Count];

    private string Echo(int prompt) => Request.Echo ? Context.Prepared.Prompts[prompt].Text : "";

    private Task ChunkAsync(SseWriter sse, CompletionChoice[] choices, Usage? usage, CancellationToken ct) =>
        sse.WriteAsync(Completion(choices, usage), ApiJsonContext.Wire.TextCompletion, ct);

    private TextCompletion Completion(CompletionChoice[] choices, Usage? usage) =>
        new(Context.Id, "text_completion", Context.Created, Context.Model, GenerationCore.Fingerprint, choices, usage);

    public override async Task BeforeGenerationAsync(CancellationToken ct)
    {
        if (Request.Echo && Request.Logprobs)
        {
            var engine = Context.Prepared.Engine;
            for (var i = 0; i < _echoLogprobs.Length; i++)
            {
                var tokens = Context.Prepared.Prompts[i].Generation.PromptTokens;
                _echoLogprobs[i] = PromptLogprobs(engine, tokens, await engine.ScorePromptAsync(tokens, Request.TopLogprobs, ct).ConfigureAwait(false));
            }
        }
    }

    /// <summary>max_tokens 0: nothing to generate; the answer is the echoed prompt (and its logprobs), streamed or not.</summary>
    public override async Task WithoutGenerationAsync(HttpContext ctx, VllmMetrics metrics, long start, CancellationToken ct)
    {
        var prompts = Context.Prepared.Prompts;
        var total = prompts.Sum(p => p.Generation.PromptTokens.Length);
        var usage = new Usage(total, 0, total, new PromptTokensDetails(0));
        var choices = Enumerable.Range(0, prompts.Count * Request.N)
            .Select(i => new CompletionChoice(i, Echo(i / Request.N), _echoLogprobs[i / Request.N], "length")).ToArray();
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        foreach (var p in prompts)
        {
            metrics.RequestFinished(p.Generation.PromptTokens.Length, 0, 0, "length");
            metrics.E2e.Observe(seconds);
        }
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

    public override async Task OpenStreamAsync(SseWriter sse, IReadOnlyList<ChoiceState> choices, CancellationToken ct)
    {
        if (!Request.Echo)
        {
            return;
        }
        // Echo streams too: each choice opens with its prompt (and its logprobs), as the non-streamed answer does.
        foreach (var c in choices)
        {
            await ChunkAsync(sse, [new CompletionChoice(c.Index, Echo(c.Prompt), _echoLogprobs[c.Prompt], null)], null, ct).ConfigureAwait(false);
        }
    }

    public override async Task<bool> TokenAsync(SseWriter sse, ChoiceState choice, TokenEvent token, bool withLogprob, Usage? runningUsage, CancellationToken ct)
    {
        if (token.Text.Length == 0 && !withLogprob)
        {
            return false;
        }
        var logprobs = withLogprob ? Legacy([choice.Logprobs[^1]], Echo(choice.Prompt).Length) : null;
        await ChunkAsync(sse, [new CompletionChoice(choice.Index, token.Text, logprobs, null)], runningUsage, ct).ConfigureAwait(false);
        return true;
    }

    public override Task FinishAsync(SseWriter sse, ChoiceState choice, FinishedEvent finished, CancellationToken ct) =>
        ChunkAsync(sse, [new CompletionChoice(choice.Index, "", null, Reason(finished.Reason))], null, ct);

    public override Task UsageAsync(SseWriter sse, Usage usage, CancellationToken ct) => ChunkAsync(sse, [], usage, ct);

    public override Task WriteAsync(HttpContext ctx, ChoiceState[] choices, Usage usage)
    {
        var answers = choices.Select(s => new CompletionChoice(s.Index, Echo(s.Prompt) + s.Text,
            Request.Logprobs ? Legacy(s.Logprobs, Echo(s.Prompt).Length, _echoLogprobs[s.Prompt]) : null, Reason(s.Finished!.Reason))).ToArray();
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
