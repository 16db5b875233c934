using KServe.Node.Hosting;
using KServe.Node.Hosting.Cli;
using KServe.Node.Llama;
using KServe.Node.LlmServer.Generation;
using KServe.Node.LlmServer.Hosting;
using KServe.Node.LlmServer.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace KServe.Node.LlmServer;

/// <summary>Builds the llm-server web application from command-line arguments (used by Program and the tests).</summary>
public static class LlmServerApp
{
    /// <summary>
    /// Creates the application. Throws <see cref="CliException"/> for a bad command line and <see cref="StartupException"/>
    /// (<see cref="ModelPathException"/> among them) for a model or template that cannot be read or a port in use.
    /// </summary>
    public static WebApplication Create(string[] args, Action<WebApplicationBuilder>? configure = null) =>
        Create(ServerCommandLine.App.Parse(args), configure, loadGateOpen: true);

    internal static WebApplication Create(string[] args, Action<WebApplicationBuilder>? configure, bool loadGateOpen) =>
        Create(ServerCommandLine.App.Parse(args), configure, loadGateOpen);

    internal static WebApplication Create(CliResult cli, Action<WebApplicationBuilder>? configure, bool loadGateOpen)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ApplicationName = typeof(LlmServerApp).Assembly.GetName().Name });
        builder.Configuration.AddCommandLine(cli);
        builder.AddServiceDefaults("llm-server");
        var options = builder.Configuration.GetSection(LlmServerOptions.Section).Get<LlmServerOptions>() ?? new LlmServerOptions();
        // Fail before anything listens when the model path is wrong: the message lists what was found.
        var model = ModelPathResolver.Resolve(string.IsNullOrWhiteSpace(options.Model) ? throw new CliException("--model is required: a GGUF file or a folder holding one (see --help)") : options.Model, options.ModelFile);
        ModelPathResolver.EnsureReadable(model, "--model");
        if (options.ChatTemplateFile is { Length: > 0 } templateFile)
        {
            ModelPathResolver.EnsureReadable(templateFile, "--chat-template-file");
        }
        _ = ParseTemplateKwargs(options.ChatTemplateKwargs);
        var fileKeys = ReadApiKeyFile(options.ApiKeyFile);
        var engineOptions = builder.Configuration.GetSection("Engine").Get<EngineOptions>() ?? new EngineOptions();
        try
        {
            (engineOptions with { ModelPath = model }).Validate();
        }
        catch (ArgumentException e)
        {
            // "EngineOptions.ContextSize must be >= 0" names the flag instead: "--context-size must be >= 0".
            throw new CliException($"{CliNames.Flag(e.ParamName ?? "")}{e.Message.Split(" (Parameter", 2)[0][($"EngineOptions.{e.ParamName}").Length..]}");
        }
        Daemon.EnsurePortFree("--port", options.Host, options.Port);
        builder.Services.AddValidatedOptions<LlmServerOptions>(builder.Configuration, LlmServerOptions.Section);
        builder.Services.PostConfigure<LlmServerOptions>(o => o.ApiKeys.AddRange(fileKeys));
        builder.Services.AddOptions<EngineOptions>().Bind(builder.Configuration.GetSection("Engine"));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(options.ShutdownTimeoutSeconds + 10));
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(new ModelLoadGate(loadGateOpen));
        builder.Services.AddSingleton<ModelService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ModelService>());
        builder.Services.AddSingleton<IMetricsExposition>(sp => sp.GetRequiredService<ModelService>().Metrics);
        builder.Services.AddSingleton<GenerationCore>();
        if (options.CorsOrigins.Count > 0)
        {
            builder.Services.AddCors(c => c.AddDefaultPolicy(p =>
            {
                if (options.CorsOrigins.Contains("*"))
                {
                    p.AllowAnyOrigin();
                }
                else
                {
                    p.WithOrigins([.. options.CorsOrigins]);
                }
                p.AllowAnyHeader().AllowAnyMethod().WithExposedHeaders(Middleware.RequestIdHeader, "Retry-After");
            }));
        }
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            k.Limits.MaxRequestHeadersTotalSize = 64 * 1024;
            k.AddServerHeader = false;
        });
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':', StringComparison.Ordinal) ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        configure?.Invoke(builder);

        var app = builder.Build();
        if (options.CorsOrigins.Count > 0)
        {
            app.UseCors();
        }
        app.UseLlmServerPipeline();
        app.MapLlmServer();
        return app;
    }

    /// <summary>
    /// Runs the server until it stops. With its one model failing to load the process must not live on as a
    /// healthy-looking shell: the host stops and the reason becomes the daemon's one-line error (exit 2).
    /// </summary>
    internal static async Task<int> RunAsync(CliResult cli)
    {
        var app = Create(cli, null, loadGateOpen: true);
        var model = app.Services.GetRequiredService<ModelService>();
        await Daemon.RunHostAsync(app).ConfigureAwait(false);
        return model.State == ModelState.Failed
            ? throw new StartupException($"the model {model.ModelPath} failed to load: {model.FailureReason}")
            : 0;
    }

    /// <summary>The keys of <c>--api-key-file</c> (none without it); an unreadable or empty file stops the start.</summary>
    internal static List<string> ReadApiKeyFile(string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return [];
        }
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--api-key-file {path} cannot be read: {e.Message}");
        }
        var keys = lines.Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        return keys.Count > 0 ? keys : throw new CliException($"--api-key-file {path} holds no key");
    }

    /// <summary>The <c>--chat-template-kwargs</c> object, or null; anything else stops the start with one line.</summary>
    internal static System.Text.Json.Nodes.JsonObject? ParseTemplateKwargs(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return null;
        }
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(json) as System.Text.Json.Nodes.JsonObject
                ?? throw new CliException("--chat-template-kwargs must be a JSON object, e.g. '{\"enable_thinking\":false}'");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new CliException("--chat-template-kwargs is not valid JSON: " + e.Message);
        }
    }
}
