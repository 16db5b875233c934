using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using k8s;
using k8s.Models;
using KServe.Node.TestKit.ApiServer;

namespace KServe.Node.TestKit.Tests;

/// <summary>kubectl (the preinstalled 1.32) against an in-process server, with the project's CRDs.</summary>
public sealed partial class KubectlTests : IAsyncLifetime
{
    private TestApiServer _server = null!;
    private string _dir = null!;
    private string _kubeconfig = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await Fixture.StartAsync();
        _dir = Directory.CreateTempSubdirectory("kserve-node-kubectl-").FullName;
        _kubeconfig = _server.WriteKubeconfig(Path.Combine(_dir, "kubeconfig"));
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static string Sample(string name) => Path.Combine(RepoPaths.Root, "daemonset", "samples", name);

    private async Task ApplyProjectCrdsAsync()
    {
        var output = await Kubectl.OkAsync(_kubeconfig, "apply", "-k", RepoPaths.Crds);
        Assert.Contains("customresourcedefinition.apiextensions.k8s.io/localmodelcaches.serving.kserve.io created", output, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();

    [Fact]
    public async Task Applies_the_project_CRDs_and_a_LocalModelCache_then_gets_patches_and_deletes_it()
    {
        await ApplyProjectCrdsAsync();
        var crds = await Kubectl.OkAsync(_kubeconfig, "get", "crd", "-o", "name");
        Assert.Contains("customresourcedefinition.apiextensions.k8s.io/localmodelnodes.serving.kserve.io", crds, StringComparison.Ordinal);

        Assert.Contains("localmodelcache.serving.kserve.io/qwen2-5-0-5b-instruct created",
            await Kubectl.OkAsync(_kubeconfig, "apply", "-f", Sample("cache.yaml")), StringComparison.Ordinal);
        Assert.Contains("unchanged", await Kubectl.OkAsync(_kubeconfig, "apply", "-f", Sample("cache.yaml")), StringComparison.Ordinal);

        var yaml = await Kubectl.OkAsync(_kubeconfig, "get", "localmodelcache", "qwen2-5-0-5b-instruct", "-o", "yaml");
        Assert.Contains("sourceModelUri: hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF", yaml, StringComparison.Ordinal);
        Assert.Contains("generation: 1", yaml, StringComparison.Ordinal);
        Assert.Contains("uid: ", yaml, StringComparison.Ordinal);

        // Status as a controller would write it, then the printer columns in plain `get`.
        using var client = _server.CreateClient();
        await client.CustomObjects.PatchClusterCustomObjectStatusAsync(new V1Patch(
            """{"status":{"copies":{"available":2,"total":3,"failed":1},"conditions":[{"type":"Ready","status":"True","reason":"Downloaded","message":"ok","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}""",
            V1Patch.PatchType.MergePatch), "serving.kserve.io", "v1alpha1", "localmodelcaches", "qwen2-5-0-5b-instruct");
        var table = (await Kubectl.OkAsync(_kubeconfig, "get", "lmc")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["NAME", "AVAILABLE", "TOTAL", "FAILED", "READY", "AGE"], Spaces().Split(table[0].Trim()));
        var row = Spaces().Split(table[1].Trim());
        Assert.Equal(["qwen2-5-0-5b-instruct", "2", "3", "1", "True"], row[..5]);
        Assert.Matches("^[0-9]+s$", row[5]);
        var wide = await Kubectl.OkAsync(_kubeconfig, "get", "lmc", "-o", "wide");
        Assert.Contains("hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF", wide, StringComparison.Ordinal);

        Assert.Contains("patched", await Kubectl.OkAsync(_kubeconfig, "patch", "lmc", "qwen2-5-0-5b-instruct", "--type", "merge",
            "-p", """{"spec":{"nodeGroups":["gpu-nodes","cpu-nodes"]}}"""), StringComparison.Ordinal);
        var patched = JsonNode.Parse(await Kubectl.OkAsync(_kubeconfig, "get", "lmc", "qwen2-5-0-5b-instruct", "-o", "json"))!;
        Assert.Equal(2, patched["spec"]!["nodeGroups"]!.AsArray().Count);
        Assert.Equal(2, patched["metadata"]!["generation"]!.GetValue<long>());

        var (exit, _, err) = await Kubectl.RunAsync(_kubeconfig, null, "patch", "lmc", "qwen2-5-0-5b-instruct", "--type", "merge",
            "-p", """{"spec":{"sourceModelUri":"s3://elsewhere"}}""");
        Assert.NotEqual(0, exit);
        Assert.Contains("spec.sourceModelUri", err, StringComparison.Ordinal);
        Assert.Contains("StorageUri is immutable", err, StringComparison.Ordinal);

        Assert.Contains("deleted", await Kubectl.OkAsync(_kubeconfig, "delete", "lmc", "qwen2-5-0-5b-instruct"), StringComparison.Ordinal);
        var (code, _) = await Fixture.FailsAsync(() => client.CustomObjects.GetClusterCustomObjectAsync("serving.kserve.io", "v1alpha1", "localmodelcaches", "qwen2-5-0-5b-instruct"));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, code);
    }

    [Fact]
    public async Task A_LocalModelCache_violating_the_schema_is_refused_with_the_field_named()
    {
        await ApplyProjectCrdsAsync();
        var bad = """
            apiVersion: serving.kserve.io/v1alpha1
            kind: LocalModelCache
            metadata:
              name: bad
            spec:
              sourceModelUri: hf://org/model
              modelSize: 1Gi
              nodeGroups: []
            """;
        var (exit, stdout, stderr) = await Kubectl.RunAsync(_kubeconfig, bad, "apply", "-f", "-");
        Assert.NotEqual(0, exit);
        Assert.Contains("spec.nodeGroups: Invalid value: 0: spec.nodeGroups in body should have at least 1 items", stderr + stdout, StringComparison.Ordinal);

        var noUri = bad.Replace("  sourceModelUri: hf://org/model\n", "", StringComparison.Ordinal).Replace("[]", "[a]", StringComparison.Ordinal);
        (exit, stdout, stderr) = await Kubectl.RunAsync(_kubeconfig, noUri, "apply", "-f", "-");
        Assert.NotEqual(0, exit);
        Assert.Contains("spec.sourceModelUri: Required value", stderr + stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_watch_streams_changes()
    {
        await ApplyProjectCrdsAsync();
        await Kubectl.OkAsync(_kubeconfig, "apply", "-f", Sample("cache.yaml"));
        using var p = Process.Start(Kubectl.StartInfo(_kubeconfig, "get", "lmc", "-w", "--output-watch-events"))!;
        var lines = Channel.CreateUnbounded<string>();
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lines.Writer.TryWrite(e.Data);
            }
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(Fixture.Timeout);
        try
        {
            async Task<string> WaitFor(string word)
            {
                while (true)
                {
                    var line = await lines.Reader.ReadAsync(cts.Token);
                    if (line.Contains(word, StringComparison.Ordinal))
                    {
                        return line;
                    }
                }
            }
            Assert.Contains("qwen2-5-0-5b-instruct", await WaitFor("ADDED"), StringComparison.Ordinal);
            using var client = _server.CreateClient();
            await client.CustomObjects.PatchClusterCustomObjectStatusAsync(new V1Patch("""{"status":{"copies":{"available":1,"total":1}}}""", V1Patch.PatchType.MergePatch),
                "serving.kserve.io", "v1alpha1", "localmodelcaches", "qwen2-5-0-5b-instruct");
            Assert.Contains("qwen2-5-0-5b-instruct", await WaitFor("MODIFIED"), StringComparison.Ordinal);
            await Kubectl.OkAsync(_kubeconfig, "delete", "lmc", "qwen2-5-0-5b-instruct");
            Assert.Contains("qwen2-5-0-5b-instruct", await WaitFor("DELETED"), StringComparison.Ordinal);
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync(CancellationToken.None);
        }
        Assert.Contains(_server.Requests, r => r is { Verb: "watch", Resource: "localmodelcaches" } && r.UserAgent.StartsWith("kubectl", StringComparison.Ordinal));
    }
}
