using KServe.Node.Hosting;
using KServe.Node.Hosting.Cli;
using KServe.Node.LlmServer.Hosting;
using KServe.Node.LlmServer.Metrics;

namespace KServe.Node.LlmServer.Tests.Unit;

public sealed class HostingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llm-model-path-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Touch(string name)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, [1]);
        return path;
    }

    [Fact]
    public void A_file_is_served_as_is()
    {
        var f = Touch("a.gguf");
        Assert.Equal(f, ModelPathResolver.Resolve(f, null));
    }

    [Fact]
    public void A_folder_with_one_gguf_serves_it()
    {
        var f = Touch("model.Q4_K_M.gguf");
        Touch("README.md");
        Assert.Equal(f, ModelPathResolver.Resolve(_dir, null));
    }

    [Fact]
    public void A_split_set_serves_its_first_part()
    {
        var first = Touch("big-00001-of-00003.gguf");
        Touch("big-00002-of-00003.gguf");
        Touch("big-00003-of-00003.gguf");
        Assert.Equal(first, ModelPathResolver.Resolve(_dir, null));
    }

    [Fact]
    public void Several_candidates_refuse_and_list_them_until_model_file_picks()
    {
        Touch("a.gguf");
        var b = Touch("b.gguf");
        Touch("c-00001-of-00002.gguf");
        Touch("c-00002-of-00002.gguf");
        var e = Assert.Throws<ModelPathException>(() => ModelPathResolver.Resolve(_dir, null));
        Assert.Contains("a.gguf", e.Message, StringComparison.Ordinal);
        Assert.Contains("b.gguf", e.Message, StringComparison.Ordinal);
        Assert.Contains("c-00001-of-00002.gguf", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("c-00002", e.Message, StringComparison.Ordinal);
        Assert.Equal(b, ModelPathResolver.Resolve(_dir, "b.gguf"));
        Assert.Throws<ModelPathException>(() => ModelPathResolver.Resolve(_dir, "../etc/passwd"));
        Assert.Throws<ModelPathException>(() => ModelPathResolver.Resolve(_dir, "missing.gguf"));
    }

    [Fact]
    public void Empty_folder_and_missing_path_are_clear_errors()
    {
        Assert.Contains("No .gguf", Assert.Throws<ModelPathException>(() => ModelPathResolver.Resolve(_dir, null)).Message, StringComparison.Ordinal);
        Assert.Throws<ModelPathException>(() => ModelPathResolver.Resolve(Path.Combine(_dir, "nope"), null));
    }

    [Fact]
    public void Command_line_maps_flags_and_llama_server_spellings_to_configuration_and_rejects_unknown_ones()
    {
        var c = ServerCommandLine.App.Parse(["--model", "/m", "--port=9000", "--api-key", "k1", "--api-key", "k2", "-c", "2048", "--no-embeddings", "-ngl", "-1"],
            new Dictionary<string, string>()).Configuration;
        Assert.Equal("/m", c["LlmServer:Model"]);
        Assert.Equal("9000", c["LlmServer:Port"]);
        Assert.Equal("k1", c["LlmServer:ApiKeys:0"]);
        Assert.Equal("k2", c["LlmServer:ApiKeys:1"]);
        Assert.Equal("2048", c["Engine:ContextSize"]);
        Assert.Equal("false", c["Engine:EnableEmbeddings"]);
        Assert.Equal("-1", c["Engine:GpuLayers"]);
        Assert.Contains("--bogus", Assert.Throws<CliException>(() => ServerCommandLine.App.Parse(["--bogus", "1"])).Message, StringComparison.Ordinal);
        Assert.Contains("--model needs a value", Assert.Throws<CliException>(() => ServerCommandLine.App.Parse(["--model"])).Message, StringComparison.Ordinal);
        Assert.Equal("--ctx-size must be an integer, got 'lots'",
            Assert.Throws<CliException>(() => ServerCommandLine.App.Parse(["--ctx-size", "lots"])).Message);
    }

    [Fact]
    public void Environment_variables_fill_what_the_command_line_leaves_out()
    {
        var env = new Dictionary<string, string> { ["LLM_SERVER_PORT"] = "9100", ["LLM_SERVER_CONTEXT_SIZE"] = "1024", ["LLM_SERVER_API_KEYS"] = "a,b" };
        var c = ServerCommandLine.App.Parse(["--port", "9200"], env).Configuration;
        Assert.Equal("9200", c["LlmServer:Port"]);
        Assert.Equal("1024", c["Engine:ContextSize"]);
        Assert.Equal("a", c["LlmServer:ApiKeys:0"]);
        Assert.Equal("b", c["LlmServer:ApiKeys:1"]);
        Assert.Equal("LLM_SERVER_PORT must be from 0 to 65535, got '70000'",
            Assert.Throws<CliException>(() => ServerCommandLine.App.Parse([], new Dictionary<string, string> { ["LLM_SERVER_PORT"] = "70000" })).Message);
    }

    [Theory]
    [InlineData("auto", true)]
    [InlineData("hermes", true)]
    [InlineData("llama3_json", true)]
    [InlineData("mistral", true)]
    [InlineData("pythonic", false)]
    public void Tool_call_parser_accepts_the_known_formats(string value, bool valid)
    {
        if (valid)
        {
            Assert.Equal(value, ServerCommandLine.App.Parse(["--tool-call-parser", value]).Configuration["LlmServer:ToolCallParser"]);
        }
        else
        {
            Assert.Contains("--tool-call-parser", Assert.Throws<CliException>(() => ServerCommandLine.App.Parse(["--tool-call-parser", value])).Message, StringComparison.Ordinal);
        }
        var options = new LlmServerOptions { Model = "/m", ToolCallParser = value };
        var results = new List<System.ComponentModel.DataAnnotations.ValidationResult>();
        Assert.Equal(valid, System.ComponentModel.DataAnnotations.Validator.TryValidateObject(options, new(options), results, validateAllProperties: true));
        Assert.Contains("--tool-call-parser", ServerCommandLine.App.Usage(ServerCommandLine.App.Commands[0]), StringComparison.Ordinal);
    }

    [Fact]
    public void Vllm_families_use_colon_names_with_the_model_label()
    {
        var m = new VllmMetrics("tiny", () => new EngineGauges(2, 3, 0.25));
        m.RequestFinished(10, 4, 5, "stop");
        m.Ttft.Observe(0.02);
        m.Ttft.Observe(0.05);
        var w = new PrometheusText();
        m.Write(w);
        var lines = w.ToString().Split('\n');
        Assert.Contains("vllm:num_requests_running{model_name=\"tiny\"} 2", lines);
        Assert.Contains("vllm:num_requests_waiting{model_name=\"tiny\"} 3", lines);
        Assert.Contains("vllm:kv_cache_usage_perc{model_name=\"tiny\"} 0.25", lines);
        Assert.Contains("vllm:prompt_tokens_total{model_name=\"tiny\"} 10", lines);
        Assert.Contains("vllm:generation_tokens_total{model_name=\"tiny\"} 5", lines);
        Assert.Contains("vllm:prefix_cache_queries_total{model_name=\"tiny\"} 10", lines);
        Assert.Contains("vllm:prefix_cache_hits_total{model_name=\"tiny\"} 4", lines);
        Assert.Contains("vllm:request_success_total{model_name=\"tiny\",finished_reason=\"stop\"} 1", lines);
        Assert.Contains("vllm:time_to_first_token_seconds_bucket{model_name=\"tiny\",le=\"0.02\"} 1", lines);
        Assert.Contains("vllm:time_to_first_token_seconds_bucket{model_name=\"tiny\",le=\"0.06\"} 2", lines);
        Assert.Contains("vllm:time_to_first_token_seconds_count{model_name=\"tiny\"} 2", lines);
        Assert.Contains("# TYPE vllm:e2e_request_latency_seconds histogram", lines);
        Assert.Contains("# TYPE vllm:inter_token_latency_seconds histogram", lines);
    }
}
