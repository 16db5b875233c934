using System.Diagnostics;
using System.Text;
using System.Text.Json;
using KServe.Node.Llama;
using KServe.Node.LlmServer.Api;
using KServe.Node.LlmServer.Metrics;
using KServe.Node.LlmServer.Serving;
using Microsoft.AspNetCore.Http;

namespace KServe.Node.LlmServer.Generation;

/// <summary>
/// One OpenAI API over the shared generation core (llama-server's <c>res_type</c>): how its body is read, how
/// its prompt is built, and the <see cref="Answer"/> that shapes its JSON and SSE replies.
/// </summary>
internal interface IGenerationDialect
{
    /// <summary>The answer id's prefix (<c>chatcmpl-</c>, <c>cmpl-</c>).</summary>
    string IdPrefix { get; }

    /// <summary>The request field that holds the prompt, for errors about it.</summary>
    string PromptParam { get; }

    ParsedRequest Parse(JsonElement root);

    /// <summary>The prompts (one, or a completions batch) as text and as the tokens the engine gets.</summary>
    IReadOnlyList<(string Text, int[] Tokens)> BuildPrompts(ModelService service, LlamaEngine engine, ParsedRequest request);

    /// <summary>The format the output is searched for tool calls in, or null.</summary>
    ToolCallFormat? ToolFormat(ModelService service, ParsedRequest request);

    /// <summary>Whether the output's reasoning is split from its content (see <see cref="Reasoning"/>).</summary>
    bool SplitsReasoning(ModelService service, ParsedRequest request, string prompt);

    Answer CreateAnswer(AnswerContext context);
}

/// <summary>What every answer of one request carries.</summary>
internal sealed record AnswerContext(Prepared Prepared, string Id, long Created, string Model)
{
    public ParsedRequest Request => Prepared.Request;
}

/// <summary>The replies of one request in its API's shape, streamed or whole.</summary>
internal abstract class Answer(AnswerContext context)
{
    protected AnswerContext Context { get; } = context;

    protected ParsedRequest Request => Context.Request;

    /// <summary>Work before the engine runs (e.g. scoring the prompt for echo with logprobs).</summary>
    public virtual Task BeforeGenerationAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>An answer for a request that generates nothing (max_tokens 0); only dialects that allow it override this.</summary>
    public virtual Task WithoutGenerationAsync(HttpContext ctx, VllmMetrics metrics, long start, CancellationToken ct) =>
        throw new UnreachableException("max_tokens 0 is refused by this dialect's parser");

    /// <summary>The first events of a stream, before any token.</summary>
    public abstract Task OpenStreamAsync(SseWriter sse, IReadOnlyList<ChoiceState> choices, CancellationToken ct);

    /// <summary>Streams a token's text (and logprob); false when nothing was written.</summary>
    public abstract Task<bool> TokenAsync(SseWriter sse, ChoiceState choice, TokenEvent token, bool withLogprob, Usage? runningUsage, CancellationToken ct);

    /// <summary>Streams a choice's end.</summary>
    public abstract Task FinishAsync(SseWriter sse, ChoiceState choice, FinishedEvent finished, CancellationToken ct);

    /// <summary>The usage chunk of <c>stream_options.include_usage</c>.</summary>
    public abstract Task UsageAsync(SseWriter sse, Usage usage, CancellationToken ct);

    /// <summary>The whole answer, once every choice ended.</summary>
    public abstract Task WriteAsync(HttpContext ctx, ChoiceState[] choices, Usage usage);

    protected static string Reason(FinishReason r) => r == FinishReason.Length ? "length" : "stop";

    protected static int[] Bytes(string s) => Encoding.UTF8.GetBytes(s).Select(b => (int)b).ToArray();
}
