using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Tests.Servers;

namespace KServe.Node.Agent.Tests;

/// <summary>hf:// against a loopback server implementing the Hub's documented endpoints.</summary>
public sealed class HubSourceTests
{
    private static SourceSettings Hub(LoopbackHub hub, string? token = null) => new(new Dictionary<string, string>
    {
        ["HF_ENDPOINT"] = hub.Endpoint,
        ["HF_TOKEN"] = token ?? "",
    });

    [Fact]
    public async Task Repo_files_of_a_revision_are_fetched_lfs_sha256_verified_and_filtered_by_allow_patterns()
    {
        await using var hub = await LoopbackHub.StartAsync();
        var repo = hub.AddRepo("acme/tiny-GGUF");
        var q4 = TestData.Bytes(6 << 20, 20);
        repo.Files["tiny.Q4_K_M.gguf"] = q4;
        repo.Files["tiny.Q8_0.gguf"] = TestData.Bytes(2 << 20, 21);
        repo.Files["config.json"] = "{}"u8.ToArray();
        repo.Files["README.md"] = "# tiny"u8.ToArray();
        repo.Files["sub/extra.json"] = "[]"u8.ToArray();
        repo.Lfs.UnionWith(["tiny.Q4_K_M.gguf", "tiny.Q8_0.gguf"]);
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);

        h.Engine.SetDesired([
            EngineHarness.Spec("q4", "hf://acme/tiny-GGUF", Hub(hub), allow: "*Q4_K_M.gguf,*.json"),
            EngineHarness.Spec("pinned", $"hf://acme/tiny-GGUF:{repo.Commit}", Hub(hub), allow: "README.md"),
        ]);
        var v = await h.WaitFor("q4", ModelStates.Downloaded);
        var pinned = await h.WaitFor("pinned", ModelStates.Downloaded);

        var folder = h.Store.ModelPath(v.StorageKey);
        Assert.Equal(["config.json", "sub/extra.json", "tiny.Q4_K_M.gguf"], TestData.Tree(folder));
        Assert.Equal(TestData.Sha256(q4), TestData.Sha256File(Path.Combine(folder, "tiny.Q4_K_M.gguf")));
        Assert.Equal(TestData.Sha256(q4), h.Store.GetManifest(v.StorageKey)!.Files.Single(f => f.Path == "tiny.Q4_K_M.gguf").Sha256);
        Assert.Equal(["README.md"], TestData.Tree(h.Store.ModelPath(pinned.StorageKey)));
        // Files outside LFS are checked against their git blob id, so the whole model is verified.
        var manifest = h.Store.GetManifest(v.StorageKey)!;
        Assert.Equal(LoopbackHub.GitBlobId("{}"u8.ToArray()), manifest.Files.Single(f => f.Path == "config.json").GitSha1);
        Assert.Equal(KServe.Node.Agent.Store.Verification.Checksum, manifest.Verification);
    }

    [Fact]
    public async Task A_file_outside_LFS_not_matching_its_git_blob_id_is_a_ModelDownloadError()
    {
        await using var hub = await LoopbackHub.StartAsync();
        var repo = hub.AddRepo("acme/bad-config");
        repo.Files["config.json"] = """{"architectures":["LlamaForCausalLM"]}"""u8.ToArray();
        repo.WrongOid.Add("config.json");
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);

        h.Engine.SetDesired([EngineHarness.Spec("c", "hf://acme/bad-config", Hub(hub))]);
        var v = await h.WaitFor("c", ModelStates.Error);

        Assert.Equal(nameof(FailureReason.ChecksumMismatch), v.Reason);
        Assert.StartsWith("checksum mismatch for config.json: git-sha1 expected ", v.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(h.Store.ModelsDir));
    }

    [Fact]
    public void The_git_blob_id_is_what_git_hash_object_prints()
    {
        var data = TestData.Bytes(70_000, 24);
        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "f.bin");
        File.WriteAllBytes(path, data);
        using var git = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("git", ["hash-object", path]) { RedirectStandardOutput = true })!;
        var printed = git.StandardOutput.ReadToEnd().Trim();
        git.WaitForExit();
        Assert.Equal(printed, LoopbackHub.GitBlobId(data));
    }

    [Fact]
    public async Task Private_repo_needs_HF_TOKEN_and_the_token_is_not_sent_to_the_cdn()
    {
        await using var hub = await LoopbackHub.StartAsync();
        var repo = hub.AddRepo("acme/private", token: "hf_secret_token_123");
        repo.Files["w.bin"] = TestData.Bytes(1 << 20, 22);
        repo.Lfs.Add("w.bin");
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);

        h.Engine.SetDesired([EngineHarness.Spec("no-token", "hf://acme/private", Hub(hub))]);
        var denied = await h.WaitFor("no-token", ModelStates.Error);
        Assert.Equal(nameof(FailureReason.AccessDenied), denied.Reason);
        Assert.Contains("HF_TOKEN", denied.Message, StringComparison.Ordinal);

        h.Engine.SetDesired([EngineHarness.Spec("with-token", "hf://acme/private:main", Hub(hub, "hf_secret_token_123"))]);
        await h.WaitFor("with-token", ModelStates.Downloaded);
        lock (hub.SeenAuthorization)
        {
            Assert.Contains(hub.SeenAuthorization, s => s.StartsWith("/api/models/acme/private/revision/main Bearer hf_secret_token_123", StringComparison.Ordinal));
            Assert.All(hub.SeenAuthorization.Where(s => s.StartsWith("/cdn/", StringComparison.Ordinal)), s => Assert.DoesNotContain("hf_secret", s, StringComparison.Ordinal));
            Assert.Contains(hub.SeenAuthorization, s => s.StartsWith("/cdn/", StringComparison.Ordinal));
        }
        Assert.DoesNotContain("hf_secret_token_123", h.Logs.All, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Content_not_matching_the_lfs_sha256_is_a_ModelDownloadError_and_nothing_appears_under_models()
    {
        await using var hub = await LoopbackHub.StartAsync();
        var repo = hub.AddRepo("acme/corrupt");
        repo.Files["model.gguf"] = TestData.Bytes(3 << 20, 23);
        repo.Lfs.Add("model.gguf");
        repo.WrongOid.Add("model.gguf");
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);

        h.Engine.SetDesired([EngineHarness.Spec("c", "hf://acme/corrupt", Hub(hub))]);
        var v = await h.WaitFor("c", ModelStates.Error);

        Assert.Equal(nameof(FailureReason.ChecksumMismatch), v.Reason);
        Assert.StartsWith("checksum mismatch for model.gguf: sha256 expected ", v.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(h.Store.ModelsDir));
        Assert.Empty(Directory.GetFileSystemEntries(h.Store.StagingDir));
    }

    [Theory]
    [InlineData("../../escaped.bin")]
    [InlineData("/etc/passwd-copy")]
    [InlineData("a/../../b")]
    public async Task Unsafe_paths_in_the_tree_are_rejected_and_nothing_is_written_outside_the_model_folder(string path)
    {
        await using var hub = await LoopbackHub.StartAsync();
        var repo = hub.AddRepo("acme/evil");
        repo.Files["ok.json"] = "{}"u8.ToArray();
        repo.ExtraTreePaths.Add(path);
        using var tmp = new TempDir();
        var root = Path.Combine(tmp.Path, "root");
        await using var h = new EngineHarness(root);

        h.Engine.SetDesired([EngineHarness.Spec("e", "hf://acme/evil", Hub(hub))]);
        var v = await h.WaitFor("e", ModelStates.Error);

        Assert.Equal(nameof(FailureReason.UnsafePath), v.Reason);
        Assert.Contains(path, v.Message, StringComparison.Ordinal);
        Assert.Equal(["root"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).ToList());
        Assert.Empty(TestData.Tree(h.Store.ModelsDir));
        Assert.False(File.Exists("/etc/passwd-copy"));
    }

    [Theory]
    [InlineData("hf://acme")]
    [InlineData("hf://acme/repo/extra")]
    [InlineData("hf:///repo")]
    [InlineData("hf://acme/:rev")]
    public void Malformed_hf_uris_are_refused_with_the_expected_form(string uri)
    {
        var e = Assert.Throws<DownloadException>(() => HubSource.Parse(uri));
        Assert.Equal(FailureReason.InvalidUri, e.Reason);
        Assert.Contains("hf://owner/repo[:revision]", e.Message, StringComparison.Ordinal);
    }
}
