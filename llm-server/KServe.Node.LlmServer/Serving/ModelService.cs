using KServe.Node.Llama;
using KServe.Node.LlmServer.Hosting;
using KServe.Node.LlmServer.Metrics;
using KServe.Node.LlmServer.Templates;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KServe.Node.LlmServer.Serving;

internal enum ModelState
{
    Loading,
    Ready,
    Failed,
}

/// <summary>
/// Owns the engine: loads the model in the background once the host runs (so health routes answer 503
/// meanwhile), tracks in-flight requests, and on shutdown lets them finish within the timeout before
/// cancelling them and freeing the engine.
/// </summary>
internal sealed class ModelService : BackgroundService
{
    // Used when the GGUF carries no chat template (llama-server falls back to ChatML as well).
    internal const string ChatMlTemplate =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private readonly LlmServerOptions _options;
    private readonly EngineOptions _engineOptions;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger<ModelService> _logger;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ModelLoadGate _gate;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;

    /// <summary>Requests read, parsed and tokenized at once: bounds the bodies held in memory and the CPU spent before the queue.</summary>
    private readonly SemaphoreSlim _preparing = new(Math.Max(8, 4 * Environment.ProcessorCount));
    private int _disposed;
    private volatile ModelState _state = ModelState.Loading;
    private LlamaEngine? _engine;

    public ModelService(IOptions<LlmServerOptions> options, IOptions<EngineOptions> engineOptions, ILoggerFactory loggerFactory,
        IHostApplicationLifetime lifetime, ModelLoadGate gate)
    {
        _options = options.Value;
        _engineOptions = engineOptions.Value;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<ModelService>();
        _lifetime = lifetime;
        _gate = gate;
        ModelPath = ModelPathResolver.Resolve(_options.Model, _options.ModelFile);
        ServedName = string.IsNullOrWhiteSpace(_options.ServedModelName)
            ? Path.GetFileNameWithoutExtension(ModelPath)
            : _options.ServedModelName;
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        ChatTemplateKwargs = LlmServerApp.ParseTemplateKwargs(_options.ChatTemplateKwargs);
        Metrics = new VllmMetrics(ServedName, () =>
        {
            var e = _engine;
            if (e is null)
            {
                return default;
            }
            var s = e.Stats;
            // As vLLM counts it: blocks of cached prefixes nobody uses are free (a new request evicts them).
            return new EngineGauges(s.Running, s.Waiting, s.KvCellsTotal > 0 ? (double)Math.Max(0, s.KvCellsUsed - s.KvCellsReclaimable) / s.KvCellsTotal : 0, s.Preemptions);
        });
    }

    public string ModelPath { get; }
    public string ServedName { get; }

    /// <summary>Server-wide chat template variables (<c>--chat-template-kwargs</c>).</summary>
    public System.Text.Json.Nodes.JsonObject? ChatTemplateKwargs { get; }
    public long Created { get; }
    public VllmMetrics Metrics { get; }
    public ModelState State => _state;
    public string? FailureReason { get; private set; }
    public ChatPrompt? ChatTemplate { get; private set; }

    /// <summary>The tool call format: <c>--tool-call-parser</c>, or detected from the chat template.</summary>
    public Api.ToolCallFormat ToolFormat { get; private set; }

    /// <summary>How reasoning is split from answers: <c>--reasoning-parser</c>, or detected from the chat template.</summary>
    public Generation.ReasoningFormat ReasoningFormat { get; private set; }
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Cancelled when the shutdown timeout runs out: every in-flight generation is linked to it.</summary>
    public CancellationToken ShutdownToken => _shutdown.Token;

    /// <summary>The engine, or a 503 while the model loads (or failed to).</summary>
    public LlamaEngine Engine => _state == ModelState.Ready && _engine is { } e ? e : throw Api.ApiException.NotReady();

    public bool IsReady => _state == ModelState.Ready;

    /// <summary>Completes when loading ends, ready or failed.</summary>
    public Task Loaded => _loaded.Task;

    /// <summary>Counts a request in flight until the returned lease is disposed.</summary>
    public InFlightLease Enter()
    {
        Interlocked.Increment(ref _inFlight);
        return new InFlightLease(this);
    }

    /// <summary>One of a bounded number of slots for reading, parsing and tokenizing a request.</summary>
    public async Task<PreparationSlot> EnterPreparationAsync(CancellationToken ct)
    {
        await _preparing.WaitAsync(ct).ConfigureAwait(false);
        return new PreparationSlot(_preparing);
    }

    /// <summary>Refuses a request (429) when the engine's queue is already full, before any parsing or tokenizing.</summary>
    public void CheckQueue()
    {
        if (IsReady && Engine.QueueFull)
        {
            throw Api.ApiException.QueueFull(1);
        }
    }

    internal void Leave()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && _lifetime.ApplicationStopping.IsCancellationRequested)
        {
            _idle.TrySetResult();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await _gate.WaitAsync(stoppingToken).ConfigureAwait(false);
            Log.LoadingModel(_logger, ModelPath, ServedName);
            var options = CloneEngineOptions();
            // Loading maps the file and allocates the KV cache: seconds to minutes, off the host's start path.
            var engine = await Task.Run(() => LlamaEngine.Start(options, _loggerFactory), stoppingToken).ConfigureAwait(false);
            var templateSource = _options.ChatTemplateFile is { Length: > 0 } file
                ? await File.ReadAllTextAsync(file, stoppingToken).ConfigureAwait(false)
                : engine.Model.ChatTemplate;
            ChatTemplate = new ChatPrompt(LoadTemplate(templateSource));
            var named = Api.ToolCallParser.Names.TryGetValue(_options.ToolCallParser, out var format);
            ToolFormat = named ? format : Api.ToolCallParser.Detect(templateSource);
            Log.ToolFormat(_logger, Api.ToolCallParser.Name(ToolFormat), named ? "--tool-call-parser" : "detected from the chat template");
            var reasoningNamed = Generation.Reasoning.Names.TryGetValue(_options.ReasoningParser, out var reasoning);
            ReasoningFormat = reasoningNamed ? reasoning : Generation.Reasoning.Detect(templateSource);
            Log.ReasoningFormat(_logger, Generation.Reasoning.Name(ReasoningFormat), reasoningNamed ? "--reasoning-parser" : "detected from the chat template");
            _engine = engine;
            _state = ModelState.Ready;
            Log.ModelReady(_logger, ServedName, engine.Model.ContextSize, engine.Model.ChatTemplate is null ? "ChatML (none in the GGUF)" : "from the GGUF");
            _loaded.TrySetResult();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            _loaded.TrySetCanceled(stoppingToken);
        }
        catch (Exception e)
        {
            FailureReason = e.Message;
            _state = ModelState.Failed;
            Log.LoadFailed(_logger, e.Message, e);
            _loaded.TrySetException(e);
            // One model per process: nothing left to serve, so the process ends (LlmServerApp.RunAsync reports why).
            _lifetime.StopApplication();
        }
    }

    // A copy, so that every setting (including ones added later) carries over and the configured instance stays as bound.
    private EngineOptions CloneEngineOptions() => _engineOptions with { ModelPath = ModelPath, ModelName = ServedName };

    private JinjaTemplate LoadTemplate(string? source)
    {
        if (source is not null)
        {
            try
            {
                return JinjaTemplate.Parse(source);
            }
            catch (JinjaException e)
            {
                Log.TemplateFallback(_logger, e.Message);
            }
        }
        return JinjaTemplate.Parse(ChatMlTemplate);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        var inFlight = InFlight;
        if (inFlight > 0)
        {
            Log.Draining(_logger, inFlight, _options.ShutdownTimeoutSeconds);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(_options.ShutdownTimeoutSeconds));
            using var either = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
            try
            {
                await _idle.Task.WaitAsync(either.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Log.CancellingInFlight(_logger, InFlight);
            }
        }
        await _shutdown.CancelAsync().ConfigureAwait(false);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        // Registered both as a singleton and as the hosted service: the container disposes it twice.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _shutdown.Cancel();
        var engine = Interlocked.Exchange(ref _engine, null);
        engine?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _shutdown.Dispose();
        base.Dispose();
    }
}

/// <summary>Marks one request in flight for graceful shutdown.</summary>
internal readonly struct InFlightLease(ModelService owner) : IDisposable
{
    public void Dispose() => owner.Leave();
}

internal readonly struct PreparationSlot(SemaphoreSlim slots) : IDisposable
{
    public void Dispose() => slots.Release();
}

/// <summary>
/// Lets the host decide when loading begins. Production opens it at once; a test can hold it closed to
/// observe the not-ready state deterministically.
/// </summary>
internal sealed class ModelLoadGate
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ModelLoadGate(bool open)
    {
        if (open)
        {
            _open.TrySetResult();
        }
    }

    public void Open() => _open.TrySetResult();

    public Task WaitAsync(CancellationToken ct) => _open.Task.WaitAsync(ct);
}
