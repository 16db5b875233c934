using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.TestKit.Net;
using KServe.Node.TestKit.S3;

namespace KServe.Node.Agent.Tests;

/// <summary>
/// Who the agent is when it reads a bucket (nobody, unless allowed to be itself) and whom it trusts (the system's CAs,
/// plus AWS_CA_BUNDLE), against the test kit's S3 stand-in.
/// </summary>
public sealed class S3AccessTests
{
    private static DownloadOptions Options() => new()
    {
        Streams = 2, ChunkSizeBytes = 1 << 20, ReserveBytes = 0, MaxAttempts = 2,
        RetryDelay = TimeSpan.FromMilliseconds(10), RetryMaxDelay = TimeSpan.FromMilliseconds(20),
    };

    private static async Task<ModelStatusView> Settled(EngineHarness h, string name)
    {
        var snap = await h.Engine.WaitForAsync(s => s.Any(v => v.StatusKey == name && v.State is ModelStates.Downloaded or ModelStates.Error), TimeSpan.FromSeconds(60));
        return snap.Single(v => v.StatusKey == name);
    }

    [Fact]
    public async Task A_private_CA_is_trusted_through_AWS_CA_BUNDLE_as_a_file_or_inline_and_refused_without_it()
    {
        using var certs = TestCertificates.Create();
        await using var s3 = await S3StandIn.StartAsync(certs.Server);
        Assert.StartsWith("https://", s3.Endpoint, StringComparison.Ordinal);
        var data = TestData.Bytes(2 << 20, 81);
        s3.Put("models", "tls/weights.bin", data);
        using var tmp = new TempDir();
        var bundle = Path.Combine(tmp.Path, "ca.pem");
        await File.WriteAllTextAsync(bundle, certs.CaPem);
        KeyValuePair<string, string>[] keys = [new("AWS_ENDPOINT_URL", s3.Endpoint), new("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), new("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")];
        await using var h = new EngineHarness(tmp.Sub("root"), Options());

        h.Engine.SetDesired([
            EngineHarness.Spec("untrusted", "s3://models/tls", new SourceSettings(keys)),
            EngineHarness.Spec("bundle", "s3://models/tls/", new SourceSettings([.. keys, new("AWS_CA_BUNDLE", bundle)])),
            EngineHarness.Spec("inline", "s3://models/tls/weights.bin", new SourceSettings([.. keys, new("AWS_CA_BUNDLE", certs.CaPem)])),
            EngineHarness.Spec("missing", "s3://models/tls/x", new SourceSettings([.. keys, new("AWS_CA_BUNDLE", "/nonexistent/ca.pem")])),
        ]);

        var untrusted = await Settled(h, "untrusted");
        Assert.Equal((ModelStates.Error, nameof(FailureReason.SourceUnavailable)), (untrusted.State, untrusted.Reason));
        Assert.Contains("TLS: ", untrusted.Message, StringComparison.Ordinal);
        Assert.Contains("AWS_CA_BUNDLE", untrusted.Message, StringComparison.Ordinal);
        foreach (var name in new[] { "bundle", "inline" })
        {
            var v = await Settled(h, name);
            Assert.True(v.State == ModelStates.Downloaded, $"{name}: {v.Reason}: {v.Message}");
            Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Directory.GetFiles(v.Path, "*", SearchOption.AllDirectories).Single()));
        }
        var missing = await Settled(h, "missing");
        Assert.Equal((ModelStates.Error, nameof(FailureReason.InvalidSettings)), (missing.State, missing.Reason));
        Assert.Contains("AWS_CA_BUNDLE /nonexistent/ca.pem", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task S3_VERIFY_SSL_0_skips_verification()
    {
        using var certs = TestCertificates.Create();
        await using var s3 = await S3StandIn.StartAsync(certs.Server);
        var data = TestData.Bytes(1 << 20, 82);
        s3.Put("models", "tls/weights.bin", data);
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, Options());

        h.Engine.SetDesired([EngineHarness.Spec("m", "s3://models/tls", new SourceSettings([
            new("AWS_ENDPOINT_URL", s3.Endpoint), new("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), new("AWS_SECRET_ACCESS_KEY", "not-a-real-secret"), new("S3_VERIFY_SSL", "0"),
        ]))]);
        var v = await Settled(h, "m");

        Assert.True(v.State == ModelStates.Downloaded, $"{v.Reason}: {v.Message}");
        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(v.Path, "weights.bin")));
    }

    [Fact]
    public async Task Without_keys_the_agent_reads_anonymously_unless_allowed_its_own_identity_and_the_download_verb_uses_the_pods()
    {
        await using var s3 = await S3StandIn.StartAsync();
        s3.Put("models", "open/weights.bin", TestData.Bytes(1 << 20, 83));
        using var tmp = new TempDir();
        // The agent's ambient identity: a profile file, as a mounted ~/.aws or IRSA would give it.
        var profile = Path.Combine(tmp.Path, "credentials");
        await File.WriteAllTextAsync(profile, "[default]\naws_access_key_id = AKIDAGENTPROFILE\naws_secret_access_key = agent-profile-secret\n");
        var config = tmp.Sub("config");
        Directory.CreateDirectory(config);
        await File.WriteAllTextAsync(Path.Combine(config, "open.yaml"), RestartTests.CacheYaml("open", "s3://models/open"));
        var env = new Dictionary<string, string>
        {
            ["AWS_ENDPOINT_URL"] = s3.Endpoint, ["AWS_SHARED_CREDENTIALS_FILE"] = profile, ["AWS_EC2_METADATA_DISABLED"] = "true", ["HOME"] = tmp.Path,
        };
        var key = Api.StorageKey.Compute("s3://models/open");

        string[] Signatures()
        {
            var seen = s3.Requests.Where(r => r.Method == "GET").Select(r => r.Headers.GetValueOrDefault("Authorization") ?? "(none)").ToArray();
            s3.Requests.Clear();
            return seen;
        }

        using (var agent = AgentProcess.Start(["standalone", "--config-dir", config, "--root", tmp.Sub("a"), "--http-port", "{port}"], env))
        {
            await agent.WaitForLine("Downloaded " + key);
        }
        var anonymous = Signatures();
        Assert.NotEmpty(anonymous);
        Assert.All(anonymous, a => Assert.Equal("(none)", a));

        using (var agent = AgentProcess.Start(["standalone", "--config-dir", config, "--root", tmp.Sub("b"), "--http-port", "{port}", "--aws-default-credentials"], env))
        {
            await agent.WaitForLine("Downloaded " + key);
        }
        var allowed = Signatures();
        Assert.NotEmpty(allowed);
        Assert.All(allowed, a => Assert.Contains("Credential=AKIDAGENTPROFILE/", a, StringComparison.Ordinal));

        using (var verb = AgentProcess.Start(["download", "s3://models/open", tmp.Sub("verb")], env))
        {
            Assert.True(await verb.WaitForExitAsync(TimeSpan.FromSeconds(60)) == 0, verb.Output);
        }
        Assert.All(Signatures(), a => Assert.Contains("Credential=AKIDAGENTPROFILE/", a, StringComparison.Ordinal));
    }
}
