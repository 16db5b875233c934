using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using KServe.Node.Llama;
using KServe.Node.LlmServer.Api;
using KServe.Node.LlmServer.Grammar;
using KServe.Node.LlmServer.Hosting;
using KServe.Node.LlmServer.Serving;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KServe.Node.LlmServer.Generation;

/// <summary>
/// One choice's output as it arrives: the text, the tokens that carry logprobs, and how it ended. <c>Prompt</c> is
/// the prompt of a completions batch it answers; <c>Index</c> its number in the answer (prompt by prompt, then by choice).
/// </summary>
internal sealed class ChoiceState(int index, int prompt)
{
    public int Index { get; set; } = index;

    public int Prompt { get; } = prompt;

    public StringBuilder Text { get; } = new();

    /// <summary>Tokens with a logprob, each with the length of <see cref="Text"/> before it.</summary>
    public List<(TokenEvent Token, int Offset)> Logprobs { get; } = [];
    public FinishedEvent? Finished { get; set; }
    public ErrorEvent? Error { get; set; }

    /// <summary>The sum of the tokens' logprobs, by which best_of ranks the candidates.</summary>
    public double CumulativeLogprob => Logprobs.Sum(l => (double)(l.Token.Logprob ?? 0));
}

/// <summary>One prompt of a request, ready for the engine: its text (for echo) and the engine request.</summary>
internal sealed record PreparedPrompt(string Text, GenerationRequest Generation);

/// <summary>
/// A request ready for the engine: its validated fields and its prompts, each with its engine request. <c>ToolFormat</c>
/// is set when the output is searched for tool calls (chat, tools given, tool_choice not "none"); <c>SplitReasoning</c>
/// when the output opens with reasoning that is answered apart from the content.
/// </summary>
internal sealed record Prepared(ParsedRequest Request, LlamaEngine Engine, IReadOnlyList<PreparedPrompt> Prompts, ToolCallFormat? ToolFormat, bool SplitReasoning)
{
    /// <summary>Every prompt's generation asks for the same tokens (max_tokens is checked against each prompt).</summary>
    public int MaxTokens => Prompts[0].Generation.MaxTokens;
}

/// <summary>
/// What chat and text completions share: reading and checking the request, limits, sampling and grammar,
/// submission to the engine, metrics, and the JSON or SSE answer loop. The shape of the answer belongs to the
/// <see cref="IGenerationDialect"/>; this class never asks which API it serves.
/// </summary>
internal sealed class GenerationCore(ModelService service, IOptions<LlmServerOptions> options, TimeProvider time, ILogger<GenerationCore> logger)
{
    internal const string Fingerprint = "kserve-node";
    private readonly LlmServerOptions _options = options.Value;

    internal LlmServerOptions Options => _options;

    internal ModelService Service => service;

    public async Task RunAsync(HttpContext ctx, IGenerationDialect dialect)
    {
        var start = Stopwatch.GetTimestamp();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, service.ShutdownToken);
        ParsedRequest request;
        Prepared prepared;
        // Reading, parsing, rendering and tokenizing happen in a bounded number of requests at once, and no parsing
        // or tokenizing when the engine's queue is already full.
        using (await service.EnterPreparationAsync(ctx.RequestAborted).ConfigureAwait(false))
        {
            var body = await HttpHelpers.ReadBodyAsync(ctx, _options.MaxRequestBytes).ConfigureAwait(false);
            service.CheckQueue();
            using (var doc = GenerationRequestParser.ParseBody(body))
            {
                request = dialect.Parse(doc.RootElement);
            }
            CheckModel(request.Model);
            if (request.UnknownFields.Count > 0)
            {
                Log.UnknownFields(logger, string.Join(", ", request.UnknownFields));
            }
            var prompts = dialect.BuildPrompts(service, service.Engine, request);
            prepared = Prepare(request, service.Engine, prompts, dialect.ToolFormat(service, request),
                dialect.SplitsReasoning(service, request, prompts[0].Text), dialect.PromptParam, cts.Token);
        }
        using var lease = service.Enter();
        var id = dialect.IdPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var answer = dialect.CreateAnswer(new AnswerContext(prepared, id, time.GetUtcNow().ToUnixTimeSeconds(), service.ServedName));
        await answer.BeforeGenerationAsync(cts.Token).ConfigureAwait(false);
        if (prepared.MaxTokens == 0)
        {
            await answer.WithoutGenerationAsync(ctx, service.Metrics, start, cts.Token).ConfigureAwait(false);
            return;
        }
        var handles = Submit(prepared);
        var candidates = request.BestOf;
        var states = Enumerable.Range(0, handles.Length * candidates).Select(i => new ChoiceState(i, i / candidates)).ToArray();
        var run = new Run(prepared, answer, states, start);
        try
        {
            if (request.Stream)
            {
                await StreamAsync(ctx, run, handles, cts.Token).ConfigureAwait(false);
            }
            else
            {
                await CompleteAsync(ctx, run, handles, cts.Token).ConfigureAwait(false);
            }
        }
        catch
        {
            // An answer that ends early (an error, the client gone) stops whatever of the request still runs.
            await cts.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Queues every prompt of the request at once: a batch runs whole or is refused whole.</summary>
    private static GenerationHandle[] Submit(Prepared prepared)
    {
        try
        {
            return [.. prepared.Engine.SubmitAll([.. prepared.Prompts.Select(p => p.Generation)])];
        }
        catch (EngineOverloadedException)
        {
            throw ApiException.QueueFull(1);
        }
        catch (ContextLengthExceededException e)
        {
            throw ApiException.ContextExceeded(e.ContextSize, e.PromptTokens, prepared.MaxTokens);
        }
        catch (InvalidRequestException e)
        {
            throw ApiException.Invalid(e.Field ?? "request", e.Message);
        }
        catch (ArgumentException e)
        {
            throw ApiException.Invalid(e.ParamName ?? GrammarParam(prepared), e.Message);
        }
    }

    internal void CheckModel(string model)
    {
        if (string.IsNullOrEmpty(model))
        {
            throw ApiException.Missing("model");
        }
        if (!string.Equals(model, service.ServedName, StringComparison.Ordinal))
        {
            throw ApiException.ModelNotFound(GenerationRequestParser.Truncate(model));
        }
    }

    private Prepared Prepare(ParsedRequest request, LlamaEngine engine, IReadOnlyList<(string Text, int[] Tokens)> prompts, ToolCallFormat? toolFormat,
        bool splitReasoning, string promptParam, CancellationToken ct)
    {
        var info = engine.Model;
        var longest = prompts.Max(p => p.Tokens.Length);
        if (prompts.Any(p => p.Tokens.Length == 0))
        {
            throw ApiException.Invalid(promptParam, "The prompt is empty after tokenization.");
        }
        var room = info.ContextSize - longest;
        int maxTokens;
        if (request.MaxTokens is { } requested)
        {
            if (requested > room)
            {
                throw ApiException.ContextExceeded(info.ContextSize, longest, requested);
            }
            maxTokens = requested;
        }
        else
        {
            if (room < 1)
            {
                throw ApiException.ContextExceeded(info.ContextSize, longest, 1);
            }
            maxTokens = Math.Min(room, _options.DefaultMaxTokens);
        }
        GenerationRequestParser.CheckVocabulary(info.VocabSize, request.StopTokenIds, "stop_token_ids");
        GenerationRequestParser.CheckVocabulary(info.VocabSize, request.LogitBias.Keys, "logit_bias");
        string? grammar;
        try
        {
            grammar = request.ResponseFormat switch
            {
                ResponseFormatKind.JsonObject => JsonSchemaGrammar.JsonObject(),
                ResponseFormatKind.JsonSchema => JsonSchemaGrammar.FromSchema(request.JsonSchema),
                _ => null,
            };
        }
        catch (JsonSchemaGrammarException e)
        {
            throw ApiException.Invalid("response_format.json_schema.schema", e.Message);
        }
        if (toolFormat is { } format && request.ToolChoice is ToolChoiceKind.Required or ToolChoiceKind.Named)
        {
            grammar = ToolCallGrammar.Build(format, request.ToolFunctions, request.ToolChoiceName, request.ParallelToolCalls);
        }
        if (grammar is not null && splitReasoning)
        {
            // The answer is constrained, not the reasoning before it.
            grammar = Reasoning.WrapGrammar(grammar);
        }
        var temperature = request.Temperature ?? 1.0f;
        var topP = request.TopP ?? 1.0f;
        if (topP <= 0)
        {
            // top_p 0 keeps only the most likely token: greedy.
            temperature = 0;
            topP = 1;
        }
        var sampling = new SamplingParams
        {
            Temperature = temperature,
            TopP = topP,
            TopK = request.TopK is > 0 ? request.TopK.Value : 0,
            MinP = request.MinP ?? 0,
            TypicalP = request.TypicalP,
            RepetitionPenalty = request.RepetitionPenalty,
            // OpenAI and vLLM count the whole output for presence and frequency, not a recent window.
            PenaltyLastN = maxTokens,
            Seed = request.Seed is { } seed ? unchecked((uint)seed) : null,
            PresencePenalty = request.PresencePenalty,
            FrequencyPenalty = request.FrequencyPenalty,
            LogitBias = request.LogitBias.Count > 0 ? request.LogitBias : null,
        };
        // best_of ranks its candidates by their logprobs, so it needs them even when the answer shows none.
        var topLogprobs = request.Logprobs ? request.TopLogprobs : request.BestOf > request.N ? 0 : -1;
        // As vLLM turns off skip_special_tokens for tool parsing: some models write their call markers as control tokens.
        var generations = prompts.Select(p => new PreparedPrompt(p.Text, new GenerationRequest(p.Tokens, sampling, maxTokens, request.Stop, request.BestOf,
            topLogprobs, grammar, request.IgnoreEos, RenderSpecialTokens: toolFormat is not null, CancellationToken: ct,
            MinTokens: Math.Min(request.MinTokens, maxTokens), StopTokenIds: request.StopTokenIds))).ToArray();
        return new Prepared(request, engine, generations, toolFormat, splitReasoning);
    }

    /// <summary>One request in flight: what it was, how it answers, and its choices so far.</summary>
    private sealed class Run(Prepared prepared, Answer answer, ChoiceState[] states, long start)
    {
        public Prepared Prepared { get; } = prepared;
        public Answer Answer { get; } = answer;
        public ChoiceState[] States { get; } = states;
        public long Start { get; } = start;
        public long LastToken { get; set; }
        public bool SawToken { get; set; }

        /// <summary>Set once the request's metrics are recorded (a stream ending during its last writes gets here twice).</summary>
        public bool Recorded { get; set; }
    }

    /// <summary>The usage of a request: each prompt counted once, every generated candidate's tokens.</summary>
    private static Usage MakeUsage(IEnumerable<ChoiceState> states)
    {
        var prompt = 0;
        var cached = 0;
        var completion = 0;
        foreach (var byPrompt in states.GroupBy(s => s.Prompt))
        {
            var first = byPrompt.Select(s => s.Finished).FirstOrDefault(f => f is not null);
            prompt += first?.PromptTokens ?? 0;
            cached += first?.CachedPromptTokens ?? 0;
            completion += byPrompt.Sum(s => s.Finished?.CompletionTokens ?? 0);
        }
        return new Usage(prompt, completion, prompt + completion, new PromptTokensDetails(cached));
    }

    /// <summary>Records each prompt of the run as one finished request, as vLLM counts the prompts of a batch.</summary>
    private void RecordMetrics(Run run)
    {
        if (run.Recorded)
        {
            return;
        }
        run.Recorded = true;
        var seconds = Stopwatch.GetElapsedTime(run.Start).TotalSeconds;
        foreach (var byPrompt in run.States.GroupBy(s => s.Prompt))
        {
            var states = byPrompt.ToArray();
            if (states[0].Finished is { } timed)
            {
                service.Metrics.Phases(timed.QueueSeconds, timed.PrefillSeconds, timed.DecodeSeconds, timed.CompletionTokens);
            }
            var usage = MakeUsage(states);
            var reason = states[0].Finished?.Reason switch
            {
                FinishReason.Stop => "stop",
                FinishReason.Length => "length",
                _ => "abort",
            };
            service.Metrics.RequestFinished(usage.PromptTokens, usage.PromptTokensDetails?.CachedTokens ?? 0, usage.CompletionTokens, reason);
            service.Metrics.E2e.Observe(seconds);
        }
    }

    /// <summary>best_of: each prompt's <c>n</c> candidates with the highest cumulative logprob, numbered again.</summary>
    private static ChoiceState[] Best(ChoiceState[] states, int n)
    {
        var best = states.GroupBy(s => s.Prompt).SelectMany(g => g.OrderByDescending(s => s.CumulativeLogprob).ThenBy(s => s.Index).Take(n)).ToArray();
        for (var i = 0; i < best.Length; i++)
        {
            best[i].Index = i;
        }
        return best;
    }

    private static string GrammarParam(Prepared p) => p.Prompts[0].Generation.Grammar is null ? "request" : p.ToolFormat is not null ? "tools" : "response_format";

    private static ApiException ErrorFor(ErrorEvent e) => e.Code switch
    {
        "kv_cache_exhausted" or "queue_timeout" => new ApiException(503, e.Message, "server_error", null, e.Code) { RetryAfterSeconds = 1 },
        "no_valid_token" => new ApiException(400, e.Message, "invalid_request_error", null, e.Code),
        "engine_stopped" => new ApiException(503, e.Message, "server_error", null, e.Code),
        _ => new ApiException(500, e.Message, "server_error", null, e.Code),
    };

    private static ApiException ShuttingDown() => new(503, "The server is shutting down.", "server_error", null, "shutting_down");

    /// <summary>The state of an engine event's choice; <paramref name="prompt"/> is the batch prompt whose handle sent it.</summary>
    private static ChoiceState StateOf(Run run, int prompt, GenerationEvent ev) => run.States[prompt * run.Prepared.Request.BestOf + ev.Choice];

    /// <summary>Records an event: latency metrics, the choice's text and logprobs, its end or error.</summary>
    private void Observe(Run run, ChoiceState s, GenerationEvent ev)
    {
        switch (ev)
        {
            case TokenEvent t:
                {
                    var now = Stopwatch.GetTimestamp();
                    if (!run.SawToken)
                    {
                        service.Metrics.Ttft.Observe(Stopwatch.GetElapsedTime(run.Start, now).TotalSeconds);
                        run.SawToken = true;
                    }
                    else
                    {
                        service.Metrics.Itl.Observe(Stopwatch.GetElapsedTime(run.LastToken, now).TotalSeconds);
                    }
                    run.LastToken = now;
                    if (t.Logprob is not null)
                    {
                        s.Logprobs.Add((t, s.Text.Length));
                    }
                    s.Text.Append(t.Text);
                    break;
                }
            case FinishedEvent f:
                s.Finished = f;
                break;
            case ErrorEvent e:
                s.Error = e;
                Log.GenerationError(logger, e.Code, e.Message);
                break;
        }
    }

    /// <summary>The events of every prompt's handle as they come, each with its prompt's number.</summary>
    private static async IAsyncEnumerable<(int Prompt, GenerationEvent Event)> EventsAsync(GenerationHandle[] handles, [EnumeratorCancellation] CancellationToken ct)
    {
        if (handles.Length == 1)
        {
            await foreach (var ev in handles[0].Events.ReadAllAsync(ct).ConfigureAwait(false))
            {
                yield return (0, ev);
            }
            yield break;
        }
        var merged = Channel.CreateUnbounded<(int, GenerationEvent)>(new UnboundedChannelOptions { SingleReader = true });
        var pumps = handles.Select(async (h, i) =>
        {
            await foreach (var ev in h.Events.ReadAllAsync(ct).ConfigureAwait(false))
            {
                merged.Writer.TryWrite((i, ev));
            }
        });
        _ = Task.WhenAll(pumps).ContinueWith(t => merged.Writer.TryComplete(t.Exception), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        await foreach (var item in merged.Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            yield return item;
        }
    }

    private async Task CompleteAsync(HttpContext ctx, Run run, GenerationHandle[] handles, CancellationToken ct)
    {
        try
        {
            await foreach (var (prompt, ev) in EventsAsync(handles, ct).ConfigureAwait(false))
            {
                Observe(run, StateOf(run, prompt, ev), ev);
            }
        }
        catch (OperationCanceledException)
        {
            if (ctx.RequestAborted.IsCancellationRequested)
            {
                Log.ClientGone(logger, run.States.Sum(s => s.Finished?.CompletionTokens ?? 0));
                throw;
            }
            throw ShuttingDown();
        }
        finally
        {
            // Every way out counts the request once.
            RecordMetrics(run);
        }
        if (run.States.Select(s => s.Error).FirstOrDefault(e => e is not null) is { } error)
        {
            throw ErrorFor(error);
        }
        var request = run.Prepared.Request;
        var choices = request.BestOf > request.N ? Best(run.States, request.N) : run.States;
        await run.Answer.WriteAsync(ctx, choices, MakeUsage(run.States)).ConfigureAwait(false);
    }

    /// <summary>
    /// Streams the answer. The response starts with the first engine event or after one ping interval, whichever
    /// comes first, so that a request failing before any output (a queue timeout, a request too big for the KV
    /// cache, shutdown) gets a plain HTTP error that clients retry, not a 200 stream holding an error.
    /// </summary>
    private async Task StreamAsync(HttpContext ctx, Run run, GenerationHandle[] handles, CancellationToken ct)
    {
        var request = run.Prepared.Request;
        var answer = run.Answer;
        using var sse = new SseWriter(ctx.Response);
        var lastWrite = Stopwatch.GetTimestamp();
        using var pingStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task? pinger = null;
        var generated = 0;
        var promptTokens = run.Prepared.Prompts.Sum(p => p.Generation.PromptTokens.Length);
        var events = EventsAsync(handles, ct).GetAsyncEnumerator(ct);

        // What one engine step published leaves in one write: the stream is flushed only before waiting for more.
        async ValueTask<bool> NextAsync()
        {
            var next = events.MoveNextAsync();
            if (!next.IsCompleted)
            {
                await sse.FlushAsync(ct).ConfigureAwait(false);
            }
            return await next.ConfigureAwait(false);
        }

        try
        {
            var first = events.MoveNextAsync().AsTask();
            await Task.WhenAny(first, Task.Delay(TimeSpan.FromSeconds(_options.SsePingSeconds), time, pingStop.Token)).ConfigureAwait(false);
            if (first.IsCompletedSuccessfully && first.Result && events.Current.Event is ErrorEvent early)
            {
                Observe(run, StateOf(run, events.Current.Prompt, early), early);
                throw ErrorFor(early);
            }
            await sse.StartAsync(ct).ConfigureAwait(false);
            pinger = PingAsync(sse, () => Volatile.Read(ref lastWrite), pingStop.Token);
            await answer.OpenStreamAsync(sse, run.States, ct).ConfigureAwait(false);
            if (!first.IsCompleted)
            {
                await sse.FlushAsync(ct).ConfigureAwait(false);
            }
            for (var more = await first.ConfigureAwait(false); more; more = await NextAsync().ConfigureAwait(false))
            {
                var (prompt, ev) = events.Current;
                var state = StateOf(run, prompt, ev);
                Observe(run, state, ev);
                switch (ev)
                {
                    case TokenEvent t:
                        if (t.TokenId >= 0)
                        {
                            generated++;
                        }
                        var running = request.ContinuousUsage ? new Usage(promptTokens, generated, promptTokens + generated, null) : null;
                        if (!await answer.TokenAsync(sse, state, t, request.Logprobs && t.Logprob is not null, running, ct).ConfigureAwait(false))
                        {
                            // Nothing went out (text held back): the ping clock keeps running.
                            continue;
                        }
                        break;
                    case FinishedEvent f when f.Reason is FinishReason.Stop or FinishReason.Length:
                        await answer.FinishAsync(sse, state, f, ct).ConfigureAwait(false);
                        break;
                    case ErrorEvent e:
                        await sse.WriteAsync(new StreamError(ErrorFor(e).ToBody().Error), ApiJsonContext.Wire.StreamError, ct).ConfigureAwait(false);
                        break;
                }
                Volatile.Write(ref lastWrite, Stopwatch.GetTimestamp());
            }
            RecordMetrics(run);
            if (request.IncludeUsage)
            {
                await answer.UsageAsync(sse, MakeUsage(run.States), ct).ConfigureAwait(false);
            }
            await sse.WriteDoneAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            RecordMetrics(run);
            if (ctx.RequestAborted.IsCancellationRequested)
            {
                Log.ClientGone(logger, run.States.Sum(s => s.Text.Length));
                throw;
            }
            if (!sse.Started)
            {
                throw ShuttingDown();
            }
            // Shutdown timeout: tell the client plainly, then end the stream.
            await sse.WriteAsync(new StreamError(ShuttingDown().ToBody().Error), ApiJsonContext.Wire.StreamError, CancellationToken.None).ConfigureAwait(false);
            await sse.WriteDoneAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            // Every way out counts the request once (a failed write to a gone client included); the paths that still send
            // something count it before they do, so a client that read the end of the stream also sees it counted.
            RecordMetrics(run);
            await pingStop.CancelAsync().ConfigureAwait(false);
            try
            {
                if (pinger is not null)
                {
                    await pinger.ConfigureAwait(false);
                }
                await events.DisposeAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>Sends an SSE comment when nothing was written for the ping interval (long prefills, queueing).</summary>
    private async Task PingAsync(SseWriter sse, Func<long> lastWrite, CancellationToken ct)
    {
        var interval = TimeSpan.FromSeconds(_options.SsePingSeconds);
        using var timer = new PeriodicTimer(interval, time);
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            if (Stopwatch.GetElapsedTime(lastWrite()) >= interval)
            {
                await sse.WritePingAsync(ct).ConfigureAwait(false);
            }
        }
    }
}
