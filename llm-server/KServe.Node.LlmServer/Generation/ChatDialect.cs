using System.Text.Json;
using System.Text.Json.Nodes;
using KServe.Node.Llama;
using KServe.Node.LlmServer.Api;
using KServe.Node.LlmServer.Serving;
using KServe.Node.LlmServer.Templates;
using Microsoft.AspNetCore.Http;
using ApiTokenLogprob = KServe.Node.LlmServer.Api.TokenLogprob;

namespace KServe.Node.LlmServer.Generation;

/// <summary><c>/v1/chat/completions</c>: messages through the chat template; answers as chat.completion(.chunk).</summary>
internal sealed class ChatDialect : IGenerationDialect
{
    public static ChatDialect Instance { get; } = new();

    public string IdPrefix => "chatcmpl-";

    public string PromptParam => "messages";

    public ParsedRequest Parse(JsonElement root) => GenerationRequestParser.ParseChat(root);

    public IReadOnlyList<(string Text, int[] Tokens)> BuildPrompts(ModelService service, LlamaEngine engine, ParsedRequest request)
    {
        var info = engine.Model;
        var text = Render(service, engine, request);
        // Templates usually write the BOS token themselves; add it only when they did not.
        var addSpecial = info.AddBos && !(info.BosToken.Length > 0 && text.StartsWith(info.BosToken, StringComparison.Ordinal));
        return [(text, engine.Tokenize(text, addSpecial, parseSpecial: true))];
    }

    public ToolCallFormat? ToolFormat(ModelService service, ParsedRequest request) =>
        request.ToolChoice != ToolChoiceKind.None && request.ToolFunctions.Count > 0 && request.ResponseFormat == ResponseFormatKind.Text
            ? service.ToolFormat
            : null;

    public bool SplitsReasoning(ModelService service, ParsedRequest request, string prompt) =>
        Reasoning.AppliesTo(service.ReasoningFormat, prompt, service.ChatTemplateKwargs, request.ChatTemplateKwargs);

    public Answer CreateAnswer(AnswerContext context) => new ChatAnswer(context);

    /// <summary>Renders the chat template for the request (HF conventions); template errors are the request's fault.</summary>
    internal static string Render(ModelService service, LlamaEngine engine, ParsedRequest request)
    {
        var template = service.ChatTemplate ?? throw ApiException.NotReady();
        JsonObject? variables = null;
        if (service.ChatTemplateKwargs is not null || request.ChatTemplateKwargs is not null)
        {
            variables = [];
            foreach (var source in new[] { service.ChatTemplateKwargs, request.ChatTemplateKwargs })
            {
                foreach (var (k, v) in source ?? [])
                {
                    variables[k] = v?.DeepClone();
                }
            }
        }
        var input = new ChatPromptInput(request.TemplateMessages!, request.Tools, request.AddGenerationPrompt, request.ContinueFinalMessage,
            engine.Model.BosToken, engine.Model.EosToken, variables);
        try
        {
            return template.Render(input);
        }
        catch (JinjaException e)
        {
            throw ApiException.Invalid("messages", "The model's chat template rejected the conversation: " + e.Message);
        }
    }
}

/// <summary>A chat answer: assistant messages, or chunks whose deltas carry content, logprobs and tool calls.</summary>
internal sealed class ChatAnswer : Answer
{
    private readonly ToolCallStreamer?[] _tools;
    private readonly ReasoningSplitter?[] _reasoning;

    public ChatAnswer(AnswerContext context) : base(context)
    {
        _tools = Enumerable.Range(0, Request.BestOf)
            .Select(_ => context.Prepared.ToolFormat is { } format ? new ToolCallStreamer(format, Request.ParallelToolCalls) : null)
            .ToArray();
        _reasoning = Enumerable.Range(0, Request.BestOf).Select(_ => context.Prepared.SplitReasoning ? new ReasoningSplitter() : null).ToArray();
    }

    /// <summary>Reasoning as the answer shows it: null when there is none to show or <c>include_reasoning</c> is false.</summary>
    private string? Shown(string? reasoning) => Request.IncludeReasoning && !string.IsNullOrEmpty(reasoning) ? reasoning : null;

    private Task ChunkAsync(SseWriter sse, ChatChunkChoice[] choices, Usage? usage, CancellationToken ct) =>
        sse.WriteAsync(new ChatCompletionChunk(Context.Id, "chat.completion.chunk", Context.Created, Context.Model, GenerationCore.Fingerprint, choices, usage),
            ApiJsonContext.Wire.ChatCompletionChunk, ct);

    private Task DeltaAsync(SseWriter sse, int choice, ChatDelta delta, CancellationToken ct, ChoiceLogprobs? logprobs = null, string? finish = null, Usage? usage = null) =>
        ChunkAsync(sse, [new ChatChunkChoice(choice, delta, logprobs, finish)], usage, ct);

    public override async Task OpenStreamAsync(SseWriter sse, IReadOnlyList<ChoiceState> choices, CancellationToken ct)
    {
        foreach (var choice in choices)
        {
            await DeltaAsync(sse, choice.Index, new ChatDelta("assistant", ""), ct).ConfigureAwait(false);
        }
    }

    public override async Task<bool> TokenAsync(SseWriter sse, ChoiceState choice, TokenEvent token, bool withLogprob, Usage? runningUsage, CancellationToken ct)
    {
        // Reasoning first: only the content after it may hold tool calls.
        var (reasoning, content) = _reasoning[choice.Index]?.Push(token.Text) ?? ("", token.Text);
        // With tools, text that may start a call is held back until the choice ends.
        var text = content.Length > 0 && _tools[choice.Index] is { } tools ? tools.Push(content) : content;
        var shown = Shown(reasoning);
        if (text.Length == 0 && shown is null && !withLogprob)
        {
            return false;
        }
        var logprobs = withLogprob ? new ChoiceLogprobs([ToLogprob(choice.Logprobs[^1].Token)]) : null;
        await DeltaAsync(sse, choice.Index, new ChatDelta(null, text.Length == 0 && shown is not null ? null : text, ReasoningContent: shown), ct, logprobs, usage: runningUsage)
            .ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Ends a choice. One that may hold tool calls first sends its held-back content, then each call as two deltas
    /// (index, id, type and name; then the complete arguments) so that clients' accumulators assemble it.
    /// </summary>
    public override async Task FinishAsync(SseWriter sse, ChoiceState choice, FinishedEvent finished, CancellationToken ct)
    {
        if (Shown(_reasoning[choice.Index]?.Finish()) is { } reasoning)
        {
            await DeltaAsync(sse, choice.Index, new ChatDelta(null, null, ReasoningContent: reasoning), ct).ConfigureAwait(false);
        }
        ToolCall[]? calls = null;
        if (_tools[choice.Index] is { } tools)
        {
            (var content, calls) = tools.Finish();
            if (content.Length > 0)
            {
                await DeltaAsync(sse, choice.Index, new ChatDelta(null, content), ct).ConfigureAwait(false);
            }
            for (var i = 0; i < (calls?.Length ?? 0); i++)
            {
                var call = calls![i];
                await DeltaAsync(sse, choice.Index, new ChatDelta(null, null, [new ToolCallDelta(i, call.Id, call.Type, new FunctionCallDelta(call.Function.Name, ""))]), ct).ConfigureAwait(false);
                await DeltaAsync(sse, choice.Index, new ChatDelta(null, null, [new ToolCallDelta(i, null, null, new FunctionCallDelta(null, call.Function.Arguments))]), ct).ConfigureAwait(false);
            }
        }
        await DeltaAsync(sse, choice.Index, new ChatDelta(null, null), ct, finish: calls is null ? Reason(finished.Reason) : "tool_calls").ConfigureAwait(false);
    }

    public override Task UsageAsync(SseWriter sse, Usage usage, CancellationToken ct) => ChunkAsync(sse, [], usage, ct);

    public override Task WriteAsync(HttpContext ctx, ChoiceState[] choices, Usage usage)
    {
        var format = Context.Prepared.ToolFormat;
        var answers = choices.Select(s =>
        {
            string? text = s.Text.ToString();
            string? reasoning = null;
            if (Context.Prepared.SplitReasoning)
            {
                (reasoning, text) = Reasoning.Split(text);
            }
            var (content, calls) = format is { } f && text is not null ? ToolCallOutput.Split(f, text, Request.ParallelToolCalls) : (text, null);
            var logprobs = Request.Logprobs ? new ChoiceLogprobs([.. s.Logprobs.Select(l => ToLogprob(l.Token))]) : null;
            var message = new AssistantMessage("assistant", content, calls, Request.IncludeReasoning ? reasoning : null);
            return new ChatChoice(s.Index, message, logprobs, calls is null ? Reason(s.Finished!.Reason) : "tool_calls");
        }).ToArray();
        return HttpHelpers.WriteJsonAsync(ctx, 200, new ChatCompletion(Context.Id, "chat.completion", Context.Created, Context.Model, GenerationCore.Fingerprint, answers, usage),
            ApiJsonContext.Wire.ChatCompletion);
    }

    private ApiTokenLogprob ToLogprob(TokenEvent t)
    {
        var text = Context.Prepared.Engine.TokenText(t.TokenId);
        var top = t.TopLogprobs?.Select(a => new TopLogprob(a.Text, a.Logprob, Bytes(a.Text))).ToArray() ?? [];
        return new ApiTokenLogprob(text, t.Logprob ?? 0, Bytes(text), top);
    }
}
