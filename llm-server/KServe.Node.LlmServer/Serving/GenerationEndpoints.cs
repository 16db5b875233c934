using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using KServe.Node.Llama;
using KServe.Node.LlmServer.Api;
using KServe.Node.LlmServer.Grammar;
using KServe.Node.LlmServer.Hosting;
using KServe.Node.LlmServer.Templates;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ApiTokenLogprob = KServe.Node.LlmServer.Api.TokenLogprob;

namespace KServe.Node.LlmServer.Serving;

/// <summary>Chat and text completions: validation, prompt building, submission to the engine, and the JSON or SSE answer.</summary>
internal sealed class GenerationEndpoints(ModelService service, IOptions<LlmServerOptions> options, TimeProvider time, ILogger<GenerationEndpoints> logger)
{
    private const string Fingerprint = "kserve-node";
    private readonly LlmServerOptions _options = options.Value;

    internal LlmServerOptions Options => _options;

    private sealed class ChoiceState
    {
        public StringBuilder Text { get; } = new();
        public List<ApiTokenLogprob> Logprobs { get; } = [];
        public List<(string Token, float Logprob, Dictionary<string, float> Top, int Offset)> Legacy { get; } = [];
        public FinishedEvent? Finished { get; set; }
        public ToolCallStreamer? Tools { get; set; }
        public ErrorEvent? Error { get; set; }

        /// <summary>Set on the first choice once the request's metrics are recorded.</summary>
        public bool Recorded { get; set; }
    }

    /// <summary>What a prepared request needs to answer; <c>ToolFormat</c> is set when the output is searched for tool calls (chat, tools given, tool_choice not "none").</summary>
    private sealed record Prepared(ParsedRequest Request, LlamaEngine Engine, GenerationRequest Generation, string PromptText, bool Chat, ToolCallFormat? ToolFormat = null)
    {
        /// <summary>The prompt's own logprobs, for legacy completions with echo and logprobs.</summary>
        public LegacyLogprobs? EchoLogprobs { get; set; }
    }

    public Task ChatAsync(HttpContext ctx) => RunAsync(ctx, chat: true);

    public Task CompletionsAsync(HttpContext ctx) => RunAsync(ctx, chat: false);

    private async Task RunAsync(HttpContext ctx, bool chat)
    {
        var start = Stopwatch.GetTimestamp();
        var body = await HttpHelpers.ReadBodyAsync(ctx, _options.MaxRequestBytes).ConfigureAwait(false);
        ParsedRequest request;
        using (var doc = GenerationRequestParser.ParseBody(body))
        {
            request = chat ? GenerationRequestParser.ParseChat(doc.RootElement) : GenerationRequestParser.ParseCompletion(doc.RootElement);
        }
        CheckModel(request.Model);
        if (request.UnknownFields.Count > 0)
        {
            Log.UnknownFields(logger, string.Join(", ", request.UnknownFields));
        }
        var engine = service.Engine;
        using var lease = service.Enter();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, service.ShutdownToken);
        var prepared = Prepare(request, engine, chat, cts.Token);
        if (!chat && request.Echo && request.Logprobs)
        {
            prepared.EchoLogprobs = PromptLogprobs(engine, prepared.Generation.PromptTokens,
                await engine.ScorePromptAsync(prepared.Generation.PromptTokens, request.TopLogprobs, cts.Token).ConfigureAwait(false));
        }
        var id = (chat ? "chatcmpl-" : "cmpl-") + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        if (prepared.Generation.MaxTokens == 0)
        {
            await EchoOnlyAsync(ctx, prepared, id, created, start, cts.Token).ConfigureAwait(false);
            return;
        }
        GenerationHandle handle;
        try
        {
            handle = engine.Submit(prepared.Generation);
        }
        catch (EngineOverloadedException)
        {
            throw ApiException.QueueFull(1);
        }
        catch (ContextLengthExceededException e)
        {
            throw ApiException.ContextExceeded(e.ContextSize, e.PromptTokens, prepared.Generation.MaxTokens);
        }
        catch (InvalidRequestException e)
        {
            throw ApiException.Invalid(e.Field ?? "request", e.Message);
        }
        catch (ArgumentException e)
        {
            throw ApiException.Invalid(e.ParamName ?? GrammarParam(prepared), e.Message);
        }
        if (request.Stream)
        {
            await StreamAsync(ctx, prepared, handle, id, created, start, cts.Token).ConfigureAwait(false);
        }
        else
        {
            await CompleteAsync(ctx, prepared, handle, id, created, start, cts.Token).ConfigureAwait(false);
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

    /// <summary>Renders the chat template for the request (HF conventions); template errors are the request's fault.</summary>
    internal static string RenderChat(ModelService service, LlamaEngine engine, ParsedRequest request, JsonObject? serverKwargs)
    {
        var template = service.ChatTemplate ?? throw ApiException.NotReady();
        JsonObject? variables = null;
        if (serverKwargs is not null || request.ChatTemplateKwargs is not null)
        {
            variables = new JsonObject();
            foreach (var source in new[] { serverKwargs, request.ChatTemplateKwargs })
            {
                foreach (var (k, v) in source ?? [])
                {
                    variables[k] = v?.DeepClone();
                }
            }
        }
        var input = new ChatPromptInput(
            new JsonArray(request.Messages!.Select(m => (JsonNode)m.Raw.DeepClone()).ToArray()),
            request.Tools,
            request.AddGenerationPrompt,
            request.ContinueFinalMessage,
            engine.Model.BosToken,
            engine.Model.EosToken,
            variables);
        try
        {
            return template.Render(input);
        }
        catch (JinjaException e)
        {
            throw ApiException.Invalid("messages", "The model's chat template rejected the conversation: " + e.Message);
        }
    }

    private Prepared Prepare(ParsedRequest request, LlamaEngine engine, bool chat, CancellationToken ct)
    {
        var info = engine.Model;
        string promptText;
        int[] tokens;
        if (chat)
        {
            promptText = RenderChat(service, engine, request, service.ChatTemplateKwargs);
            // Templates usually write the BOS token themselves; add it only when they did not.
            var addSpecial = info.AddBos && !(info.BosToken.Length > 0 && promptText.StartsWith(info.BosToken, StringComparison.Ordinal));
            tokens = engine.Tokenize(promptText, addSpecial, parseSpecial: true);
        }
        else
        {
            if (request.PromptTokens is { } ids)
            {
                foreach (var t in ids.Where(t => t >= info.VocabSize))
                {
                    throw ApiException.Invalid("prompt", $"Token id {t} in 'prompt' is outside the vocabulary (size {info.VocabSize}).");
                }
                tokens = ids;
                promptText = engine.Detokenize(ids);
            }
            else
            {
                promptText = request.Prompt!;
                tokens = engine.Tokenize(promptText, addSpecial: true, parseSpecial: true);
            }
        }
        if (tokens.Length == 0)
        {
            throw ApiException.Invalid(chat ? "messages" : "prompt", "The prompt is empty after tokenization.");
        }
        var room = info.ContextSize - tokens.Length;
        int maxTokens;
        if (request.MaxTokens is { } requested)
        {
            if (requested > room)
            {
                throw ApiException.ContextExceeded(info.ContextSize, tokens.Length, requested);
            }
            maxTokens = requested;
        }
        else
        {
            if (room < 1)
            {
                throw ApiException.ContextExceeded(info.ContextSize, tokens.Length, 1);
            }
            maxTokens = Math.Min(room, _options.DefaultMaxTokens);
        }
        foreach (var token in request.StopTokenIds.Where(t => t >= info.VocabSize))
        {
            throw ApiException.Invalid("stop_token_ids", $"Token id {token} in 'stop_token_ids' is outside the vocabulary (size {info.VocabSize}).");
        }
        foreach (var token in request.LogitBias.Keys)
        {
            if (token >= info.VocabSize)
            {
                throw ApiException.Invalid("logit_bias", $"Token id {token} in 'logit_bias' is outside the vocabulary (size {info.VocabSize}).");
            }
        }
        string? grammar = null;
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
        ToolCallFormat? toolFormat = null;
        if (chat && request.ToolChoice != ToolChoiceKind.None && request.ToolFunctions.Count > 0 && request.ResponseFormat == ResponseFormatKind.Text)
        {
            toolFormat = service.ToolFormat;
            if (request.ToolChoice is ToolChoiceKind.Required or ToolChoiceKind.Named)
            {
                grammar = ToolCallGrammar.Build(toolFormat.Value, request.ToolFunctions, request.ToolChoiceName, request.ParallelToolCalls);
            }
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
        var topLogprobs = request.Logprobs ? request.TopLogprobs : -1;
        // As vLLM turns off skip_special_tokens for tool parsing: some models write their call markers as control tokens.
        var generation = new GenerationRequest(tokens, sampling, maxTokens, request.Stop, request.N, topLogprobs, grammar, request.IgnoreEos,
            RenderSpecialTokens: toolFormat is not null, CancellationToken: ct, MinTokens: Math.Min(request.MinTokens, maxTokens), StopTokenIds: request.StopTokenIds);
        return new Prepared(request, engine, generation, promptText, chat, toolFormat);
    }

    private static string Reason(FinishReason r) => r switch
    {
        FinishReason.Length => "length",
        _ => "stop",
    };

    private static string MetricReason(FinishReason r) => r switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        _ => "abort",
    };

    private static ApiTokenLogprob ToLogprob(LlamaEngine engine, TokenEvent t)
    {
        var text = engine.TokenText(t.TokenId);
        var top = t.TopLogprobs?.Select(a => new TopLogprob(a.Text, a.Logprob, Bytes(a.Text))).ToArray() ?? [];
        return new ApiTokenLogprob(text, t.Logprob ?? 0, Bytes(text), top);
    }

    private static int[] Bytes(string s) => Encoding.UTF8.GetBytes(s).Select(b => (int)b).ToArray();

    private static Usage MakeUsage(ChoiceState[] states)
    {
        var first = states.Select(s => s.Finished).FirstOrDefault(f => f is not null);
        var prompt = first?.PromptTokens ?? 0;
        var cached = first?.CachedPromptTokens ?? 0;
        var completion = states.Sum(s => s.Finished?.CompletionTokens ?? 0);
        return new Usage(prompt, completion, prompt + completion, new PromptTokensDetails(cached));
    }

    private void RecordMetrics(ChoiceState[] states, long start)
    {
        // Once per request: a stream that ends while its usage chunk or [DONE] is written lands here twice.
        if (states.Length == 0 || states[0].Recorded)
        {
            return;
        }
        states[0].Recorded = true;
        if (states[0].Finished is { } timed)
        {
            service.Metrics.Phases(timed.QueueSeconds, timed.PrefillSeconds, timed.DecodeSeconds, timed.CompletionTokens);
        }
        var usage = MakeUsage(states);
        var reason = states[0].Finished is { } f ? MetricReason(f.Reason) : "abort";
        service.Metrics.RequestFinished(usage.PromptTokens, usage.PromptTokensDetails?.CachedTokens ?? 0, usage.CompletionTokens, reason);
        service.Metrics.E2e.Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
    }

    private static string GrammarParam(Prepared p) => p.Generation.Grammar is null ? "request" : p.ToolFormat is not null ? "tools" : "response_format";

    private static ApiException ErrorFor(ErrorEvent e, Prepared p) => e.Code switch
    {
        "invalid_grammar" => ApiException.Invalid(GrammarParam(p), e.Message),
        "kv_cache_exhausted" => new ApiException(503, e.Message, "server_error", null, e.Code) { RetryAfterSeconds = 1 },
        "engine_stopped" => new ApiException(503, e.Message, "server_error", null, e.Code),
        _ => new ApiException(500, e.Message, "server_error", null, e.Code),
    };

    private void Observe(LlamaEngine engine, ChoiceState[] states, GenerationEvent ev, bool legacy, ref long lastToken, long start, ref bool first)
    {
        switch (ev)
        {
            case TokenEvent t:
                {
                    var now = Stopwatch.GetTimestamp();
                    if (first)
                    {
                        service.Metrics.Ttft.Observe(Stopwatch.GetElapsedTime(start, now).TotalSeconds);
                        first = false;
                    }
                    else
                    {
                        service.Metrics.Itl.Observe(Stopwatch.GetElapsedTime(lastToken, now).TotalSeconds);
                    }
                    lastToken = now;
                    var s = states[t.Choice];
                    if (t.Logprob is not null)
                    {
                        if (legacy)
                        {
                            var text = engine.TokenText(t.TokenId);
                            var top = new Dictionary<string, float>(StringComparer.Ordinal);
                            foreach (var a in t.TopLogprobs ?? [])
                            {
                                top.TryAdd(a.Text, a.Logprob);
                            }
                            s.Legacy.Add((text, t.Logprob.Value, top, s.Text.Length));
                        }
                        else
                        {
                            s.Logprobs.Add(ToLogprob(engine, t));
                        }
                    }
                    s.Text.Append(t.Text);
                    break;
                }
            case FinishedEvent f:
                states[f.Choice].Finished = f;
                break;
            case ErrorEvent e:
                states[e.Choice].Error = e;
                Log.GenerationError(logger, e.Code, e.Message);
                break;
        }
    }

    private async Task CompleteAsync(HttpContext ctx, Prepared p, GenerationHandle handle, string id, long created, long start, CancellationToken ct)
    {
        var states = Enumerable.Range(0, p.Request.N).Select(_ => new ChoiceState()).ToArray();
        long last = 0;
        var first = true;
        try
        {
            await foreach (var ev in handle.Events.ReadAllAsync(ct).ConfigureAwait(false))
            {
                Observe(p.Engine, states, ev, !p.Chat, ref last, start, ref first);
            }
        }
        catch (OperationCanceledException)
        {
            RecordMetrics(states, start);
            if (ctx.RequestAborted.IsCancellationRequested)
            {
                Log.ClientGone(logger, states.Sum(s => s.Finished?.CompletionTokens ?? 0));
                throw;
            }
            throw new ApiException(503, "The server is shutting down.", "server_error", null, "shutting_down");
        }
        RecordMetrics(states, start);
        if (states.Select(s => s.Error).FirstOrDefault(e => e is not null) is { } error)
        {
            throw ErrorFor(error, p);
        }
        var usage = MakeUsage(states);
        if (p.Chat)
        {
            var choices = states.Select((s, i) =>
            {
                var text = s.Text.ToString();
                var (content, calls) = p.ToolFormat is { } format ? ToolCallOutput.Split(format, text, p.Request.ParallelToolCalls) : (text, null);
                return new ChatChoice(i, new AssistantMessage("assistant", content, calls),
                    p.Request.Logprobs ? new ChoiceLogprobs([.. s.Logprobs]) : null, calls is null ? Reason(s.Finished!.Reason) : "tool_calls");
            }).ToArray();
            await HttpHelpers.WriteJsonAsync(ctx, 200, new ChatCompletion(id, "chat.completion", created, service.ServedName, Fingerprint, choices, usage),
                ApiJsonContext.Wire.ChatCompletion).ConfigureAwait(false);
        }
        else
        {
            var prefix = p.Request.Echo ? p.PromptText : "";
            var choices = states.Select((s, i) => new CompletionChoice(i, prefix + s.Text,
                p.Request.Logprobs ? LegacyOf(s, prefix.Length, p.EchoLogprobs) : null, Reason(s.Finished!.Reason))).ToArray();
            await HttpHelpers.WriteJsonAsync(ctx, 200, new TextCompletion(id, "text_completion", created, service.ServedName, Fingerprint, choices, usage),
                ApiJsonContext.Wire.TextCompletion).ConfigureAwait(false);
        }
    }

    private static LegacyLogprobs LegacyOf(ChoiceState s, int offset, LegacyLogprobs? echo = null) => new(
        [.. echo?.Tokens ?? [], .. s.Legacy.Select(l => l.Token)],
        [.. echo?.TokenLogprobs ?? [], .. s.Legacy.Select(l => (float?)l.Logprob)],
        [.. echo?.TopLogprobs ?? [], .. s.Legacy.Select(l => (Dictionary<string, float>?)l.Top)],
        [.. echo?.TextOffset ?? [], .. s.Legacy.Select(l => l.Offset + offset)]);

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
            var top = new Dictionary<string, float>(StringComparer.Ordinal);
            foreach (var a in s.Top)
            {
                top.TryAdd(a.Text, a.Logprob);
            }
            if (s.Top.Count > 0)
            {
                top.TryAdd(texts[i], s.Logprob);
            }
            tops[i] = top;
        }
        return new LegacyLogprobs(texts, lps, tops, offsets);
    }

    /// <summary>max_tokens 0: nothing to generate; the answer is the echoed prompt (and its logprobs), streamed or not.</summary>
    private async Task EchoOnlyAsync(HttpContext ctx, Prepared p, string id, long created, long start, CancellationToken ct)
    {
        var text = p.Request.Echo ? p.PromptText : "";
        var prompt = p.Generation.PromptTokens.Length;
        var usage = new Usage(prompt, 0, prompt, new PromptTokensDetails(0));
        var choices = Enumerable.Range(0, p.Request.N).Select(i => new CompletionChoice(i, text, p.EchoLogprobs, "length")).ToArray();
        service.Metrics.RequestFinished(prompt, 0, 0, "length");
        service.Metrics.E2e.Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        if (!p.Request.Stream)
        {
            await HttpHelpers.WriteJsonAsync(ctx, 200, new TextCompletion(id, "text_completion", created, service.ServedName, Fingerprint, choices, usage),
                ApiJsonContext.Wire.TextCompletion).ConfigureAwait(false);
            return;
        }
        using var sse = new SseWriter(ctx.Response);
        await sse.StartAsync(ct).ConfigureAwait(false);
        foreach (var c in choices)
        {
            await sse.WriteAsync(new TextCompletion(id, "text_completion", created, service.ServedName, Fingerprint, [c], null), ApiJsonContext.Wire.TextCompletion, ct).ConfigureAwait(false);
        }
        if (p.Request.IncludeUsage)
        {
            await sse.WriteAsync(new TextCompletion(id, "text_completion", created, service.ServedName, Fingerprint, [], usage), ApiJsonContext.Wire.TextCompletion, ct).ConfigureAwait(false);
        }
        await sse.WriteDoneAsync(ct).ConfigureAwait(false);
    }

    private async Task StreamAsync(HttpContext ctx, Prepared p, GenerationHandle handle, string id, long created, long start, CancellationToken ct)
    {
        var states = Enumerable.Range(0, p.Request.N).Select(_ => new ChoiceState
        {
            Tools = p.ToolFormat is { } format ? new ToolCallStreamer(format, p.Request.ParallelToolCalls) : null,
        }).ToArray();
        using var sse = new SseWriter(ctx.Response);
        var model = service.ServedName;
        var lastWrite = Stopwatch.GetTimestamp();
        await sse.StartAsync(ct).ConfigureAwait(false);
        using var pingStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pinger = PingAsync(sse, () => Volatile.Read(ref lastWrite), pingStop.Token);
        long last = 0;
        var first = true;
        var generated = 0;
        var promptTokens = p.Generation.PromptTokens.Length;
        try
        {
            if (p.Chat)
            {
                for (var i = 0; i < states.Length; i++)
                {
                    await sse.WriteAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, model, Fingerprint,
                        [new ChatChunkChoice(i, new ChatDelta("assistant", ""), null, null)], null), ApiJsonContext.Wire.ChatCompletionChunk, ct).ConfigureAwait(false);
                }
            }
            if (!p.Chat && p.Request.Echo)
            {
                // Echo streams too: each choice opens with the prompt (and its logprobs), as the non-streamed answer does.
                for (var i = 0; i < states.Length; i++)
                {
                    await sse.WriteAsync(new TextCompletion(id, "text_completion", created, model, Fingerprint,
                        [new CompletionChoice(i, p.PromptText, p.EchoLogprobs, null)], null), ApiJsonContext.Wire.TextCompletion, ct).ConfigureAwait(false);
                }
            }
            await foreach (var ev in handle.Events.ReadAllAsync(ct).ConfigureAwait(false))
            {
                var logprobsBefore = ev is TokenEvent ? states[ev.Choice].Logprobs.Count : 0;
                var legacyBefore = ev is TokenEvent ? states[ev.Choice].Legacy.Count : 0;
                var textBefore = ev is TokenEvent ? states[ev.Choice].Text.Length : 0;
                Observe(p.Engine, states, ev, !p.Chat, ref last, start, ref first);
                switch (ev)
                {
                    case TokenEvent t:
                        {
                            var s = states[t.Choice];
                            if (t.TokenId >= 0)
                            {
                                generated++;
                            }
                            var running = p.Request.ContinuousUsage ? new Usage(promptTokens, generated, promptTokens + generated, null) : null;
                            var hasLogprob = p.Request.Logprobs && (p.Chat ? s.Logprobs.Count > logprobsBefore : s.Legacy.Count > legacyBefore);
                            // With tools, text that may start a call is held back until the choice ends.
                            var text = s.Tools?.Push(t.Text) ?? t.Text;
                            if (text.Length == 0 && !hasLogprob)
                            {
                                continue;
                            }
                            if (p.Chat)
                            {
                                var lp = hasLogprob ? new ChoiceLogprobs([s.Logprobs[^1]]) : null;
                                await sse.WriteAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, model, Fingerprint,
                                    [new ChatChunkChoice(t.Choice, new ChatDelta(null, text), lp, null)], running), ApiJsonContext.Wire.ChatCompletionChunk, ct).ConfigureAwait(false);
                            }
                            else
                            {
                                var lp = hasLogprob ? new LegacyLogprobs([s.Legacy[^1].Token], [s.Legacy[^1].Logprob], [s.Legacy[^1].Top], [textBefore + (p.Request.Echo ? p.PromptText.Length : 0)]) : null;
                                await sse.WriteAsync(new TextCompletion(id, "text_completion", created, model, Fingerprint,
                                    [new CompletionChoice(t.Choice, t.Text, lp, null)], running), ApiJsonContext.Wire.TextCompletion, ct).ConfigureAwait(false);
                            }
                            break;
                        }
                    case FinishedEvent f when f.Reason is FinishReason.Stop or FinishReason.Length:
                        if (p.Chat && states[f.Choice].Tools is { } tools)
                        {
                            await WriteToolEndAsync(sse, tools, f, id, created, ct).ConfigureAwait(false);
                        }
                        else if (p.Chat)
                        {
                            await sse.WriteAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, model, Fingerprint,
                                [new ChatChunkChoice(f.Choice, new ChatDelta(null, null), null, Reason(f.Reason))], null), ApiJsonContext.Wire.ChatCompletionChunk, ct).ConfigureAwait(false);
                        }
                        else
                        {
                            await sse.WriteAsync(new TextCompletion(id, "text_completion", created, model, Fingerprint,
                                [new CompletionChoice(f.Choice, "", null, Reason(f.Reason))], null), ApiJsonContext.Wire.TextCompletion, ct).ConfigureAwait(false);
                        }
                        break;
                    case ErrorEvent e:
                        {
                            var err = ErrorFor(e, p);
                            await sse.WriteAsync(new StreamError(err.ToBody().Error), ApiJsonContext.Wire.StreamError, ct).ConfigureAwait(false);
                            break;
                        }
                }
                Volatile.Write(ref lastWrite, Stopwatch.GetTimestamp());
            }
            RecordMetrics(states, start);
            if (p.Request.IncludeUsage)
            {
                var usage = MakeUsage(states);
                if (p.Chat)
                {
                    await sse.WriteAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, model, Fingerprint, [], usage),
                        ApiJsonContext.Wire.ChatCompletionChunk, ct).ConfigureAwait(false);
                }
                else
                {
                    await sse.WriteAsync(new TextCompletion(id, "text_completion", created, model, Fingerprint, [], usage),
                        ApiJsonContext.Wire.TextCompletion, ct).ConfigureAwait(false);
                }
            }
            await sse.WriteDoneAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            RecordMetrics(states, start);
            if (ctx.RequestAborted.IsCancellationRequested)
            {
                Log.ClientGone(logger, states.Sum(s => s.Text.Length));
                throw;
            }
            // Shutdown timeout: tell the client plainly, then end the stream.
            var err = new ApiException(503, "The server is shutting down.", "server_error", null, "shutting_down");
            await sse.WriteAsync(new StreamError(err.ToBody().Error), ApiJsonContext.Wire.StreamError, CancellationToken.None).ConfigureAwait(false);
            await sse.WriteDoneAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            await pingStop.CancelAsync().ConfigureAwait(false);
            try
            {
                await pinger.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>
    /// Ends a choice that may hold tool calls: the held-back content, then each call as two deltas (index, id,
    /// type and name; then the complete arguments) so that clients' accumulators assemble it, then the finish reason.
    /// </summary>
    private async Task WriteToolEndAsync(SseWriter sse, ToolCallStreamer tools, FinishedEvent f, string id, long created, CancellationToken ct)
    {
        var model = service.ServedName;
        var (content, calls) = tools.Finish();
        if (content.Length > 0)
        {
            await sse.WriteAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, model, Fingerprint,
                [new ChatChunkChoice(f.Choice, new ChatDelta(null, content), null, null)], null), ApiJsonContext.Wire.ChatCompletionChunk, ct).ConfigureAwait(false);
        }
        for (var i = 0; i < (calls?.Length ?? 0); i++)
        {
            var call = calls![i];
            await sse.WriteAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, model, Fingerprint,
                [new ChatChunkChoice(f.Choice, new ChatDelta(null, null, [new ToolCallDelta(i, call.Id, call.Type, new FunctionCallDelta(call.Function.Name, ""))]), null, null)], null),
                ApiJsonContext.Wire.ChatCompletionChunk, ct).ConfigureAwait(false);
            await sse.WriteAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, model, Fingerprint,
                [new ChatChunkChoice(f.Choice, new ChatDelta(null, null, [new ToolCallDelta(i, null, null, new FunctionCallDelta(null, call.Function.Arguments))]), null, null)], null),
                ApiJsonContext.Wire.ChatCompletionChunk, ct).ConfigureAwait(false);
        }
        await sse.WriteAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, model, Fingerprint,
            [new ChatChunkChoice(f.Choice, new ChatDelta(null, null), null, calls is null ? Reason(f.Reason) : "tool_calls")], null),
            ApiJsonContext.Wire.ChatCompletionChunk, ct).ConfigureAwait(false);
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
