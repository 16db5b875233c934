using System.Net;
using KServe.Node.Hosting.Cli;
using KServe.Node.LlmServer.Hosting;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>Running the daemon: a model that does not load ends the process, keys from a file, names with slashes.</summary>
public sealed class OperationsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llm-ops-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_model_that_fails_to_load_ends_the_process_with_exit_2_and_the_reason()
    {
        // A real GGUF cut in half: the header reads, the tensors are missing.
        var bytes = await File.ReadAllBytesAsync(TestModels.Tiny, TestContext.Current.CancellationToken);
        var broken = Path.Combine(_dir, "broken.gguf");
        await File.WriteAllBytesAsync(broken, bytes[..(bytes.Length / 2)], TestContext.Current.CancellationToken);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        string[] args = ["--model", broken, "--host", "127.0.0.1", "--port", "0", "--native-dir", Path.Combine(RepoPaths.Root, ".native", "cpu"),
            "--ctx-size", "512", "--threads", "1"];
        var code = await Daemon.RunAsync(ServerCommandLine.App, args, (cli, _) => LlmServerApp.RunAsync(cli), stdout, stderr)
            .WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        Assert.Equal(2, code);
        Assert.Contains("failed to load", stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("broken.gguf", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keys_from_a_file_authenticate_and_model_ids_with_slashes_resolve()
    {
        var keyFile = Path.Combine(_dir, "keys");
        await File.WriteAllTextAsync(keyFile, "# rotated monthly\n\n  key-from-file  \n", TestContext.Current.CancellationToken);
        await using var s = await RunningServer.StartAsync(["--api-key-file", keyFile, "--api-key", "key-from-flag", "--served-model-name", "org/tiny-chat"]);
        Assert.Equal(401, (await Raw.GetAsync(s.Http, "v1/models/org/tiny-chat")).Status);
        foreach (var key in new[] { "key-from-file", "key-from-flag" })
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, "v1/models/org/tiny-chat");
            req.Headers.Authorization = new("Bearer", key);
            using var r = await s.Http.SendAsync(req, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            using var doc = System.Text.Json.JsonDocument.Parse(await r.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
            Assert.Equal("org/tiny-chat", doc.RootElement.GetProperty("id").GetString());
        }
        s.Http.DefaultRequestHeaders.Authorization = new("Bearer", "key-from-file");
        var (missing, body) = await Raw.GetAsync(s.Http, "openai/v1/models/org/other");
        Assert.Equal(404, missing);
        Raw.AssertError(body, "model", "model_not_found");
    }

    [Fact]
    public void An_empty_or_missing_key_file_stops_the_start_with_one_line()
    {
        var empty = Path.Combine(_dir, "empty");
        File.WriteAllText(empty, "# nothing\n");
        Assert.Contains("holds no key", Assert.Throws<CliException>(() => LlmServerApp.ReadApiKeyFile(empty)).Message, StringComparison.Ordinal);
        Assert.Contains("cannot be read", Assert.Throws<CliException>(() => LlmServerApp.ReadApiKeyFile(Path.Combine(_dir, "absent"))).Message, StringComparison.Ordinal);
        Assert.Equal("LlmServer:ApiKeyFile", "LlmServer:" + nameof(LlmServerOptions.ApiKeyFile));
        Assert.Equal("/k", ServerCommandLine.App.Parse([], new Dictionary<string, string> { ["LLM_SERVER_API_KEY_FILE"] = "/k" }).Configuration["LlmServer:ApiKeyFile"]);
    }
}
