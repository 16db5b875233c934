using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.TestKit.S3;

namespace KServe.Node.Agent.Tests;

/// <summary>s3:// and gs:// against s3rver, a real S3-protocol server on loopback.</summary>
public sealed class S3SourceTests
{
    [Fact]
    public async Task Prefix_is_downloaded_with_keys_relative_to_it_and_md5_verified()
    {
        await using var s3rver = await S3rverProcess.StartAsync();
        using var s3 = S3TestClient.For(s3rver.Endpoint);
        await s3.PutBucketAsync("models");
        var weights = TestData.Bytes(5 << 20, 10);
        await s3.PutAsync("models", "llama/model.gguf", weights);
        await s3.PutAsync("models", "llama/tokenizer/config.json", "{\"a\":1}"u8.ToArray());
        await s3.PutAsync("models", "llama/empty.txt", []);
        await s3.PutAsync("models", "llama-evil/other.bin", [9]);
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);

        h.Engine.SetDesired([EngineHarness.Spec("llama", "s3://models/llama", S3TestClient.Settings(s3rver.Endpoint))]);
        var v = await h.WaitFor("llama", ModelStates.Downloaded);

        var folder = h.Store.ModelPath(v.StorageKey);
        Assert.Equal(["model.gguf", "tokenizer/config.json"], TestData.Tree(folder));
        Assert.Equal(TestData.Sha256(weights), TestData.Sha256File(Path.Combine(folder, "model.gguf")));
        var manifest = h.Store.GetManifest(v.StorageKey)!;
        Assert.Equal(weights.Length + 7, manifest.TotalBytes);
        Assert.All(manifest.Files, f => Assert.NotNull(f.Md5));
        Assert.Equal(manifest.TotalBytes, v.BytesDone);
        Assert.Equal(manifest.TotalBytes, v.BytesTotal);
    }

    [Fact]
    public async Task An_exact_key_is_one_file()
    {
        await using var s3rver = await S3rverProcess.StartAsync();
        using var s3 = S3TestClient.For(s3rver.Endpoint);
        await s3.PutBucketAsync("bkt");
        await s3.PutAsync("bkt", "dir/model-q4.gguf", TestData.Bytes(1000, 11));
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);

        h.Engine.SetDesired([EngineHarness.Spec("one", "s3://bkt/dir/model-q4.gguf", S3TestClient.Settings(s3rver.Endpoint))]);
        var v = await h.WaitFor("one", ModelStates.Downloaded);

        Assert.Equal(["model-q4.gguf"], TestData.Tree(h.Store.ModelPath(v.StorageKey)));
    }

    [Fact]
    public async Task Wrong_credentials_give_a_clear_error_without_the_secret_in_status_or_logs()
    {
        const string secret = "wR0ng-Secret-Value-7f3a9c";
        await using var s3rver = await S3rverProcess.StartAsync();
        using var s3 = S3TestClient.For(s3rver.Endpoint);
        await s3.PutBucketAsync("private");
        await s3.PutAsync("private", "m/model.bin", [1, 2, 3]);
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);

        // s3rver checks the access key id (it does not verify V4 signatures), so both parts are wrong here.
        var settings = new SourceSettings(new Dictionary<string, string>
        {
            ["AWS_ENDPOINT_URL"] = s3rver.Endpoint,
            ["AWS_ACCESS_KEY_ID"] = "AKIAWRONGKEY",
            ["AWS_SECRET_ACCESS_KEY"] = secret,
        });
        h.Engine.SetDesired([EngineHarness.Spec("m", "s3://private/m", settings)]);
        var v = await h.WaitFor("m", ModelStates.Error);

        Assert.Equal(nameof(FailureReason.AccessDenied), v.Reason);
        Assert.Equal("s3://private/m: access denied (InvalidAccessKeyId); check the credentials", v.Message);
        Assert.DoesNotContain(secret, h.Logs.All, StringComparison.Ordinal);
        Assert.Contains("AccessDenied", h.Logs.All, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(h.Store.ModelsDir));
    }

    [Fact]
    public async Task Gcs_xml_api_with_s3rver_standing_in_for_storage_googleapis_com()
    {
        // gs:// goes through GCS's XML interoperability API (S3-compatible, HMAC-signed); s3rver stands in for it.
        await using var s3rver = await S3rverProcess.StartAsync();
        using var s3 = S3TestClient.For(s3rver.Endpoint);
        await s3.PutBucketAsync("gcs-bucket");
        var data = TestData.Bytes(3 << 20, 12);
        await s3.PutAsync("gcs-bucket", "models/m1/weights.bin", data);
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path);
        var settings = new SourceSettings(new Dictionary<string, string>
        {
            ["GCS_ENDPOINT"] = s3rver.Endpoint,
            ["GCS_ACCESS_KEY_ID"] = S3rverProcess.AccessKey,
            ["GCS_SECRET_ACCESS_KEY"] = S3rverProcess.SecretKey,
        });

        h.Engine.SetDesired([EngineHarness.Spec("g", "gs://gcs-bucket/models/m1", settings)]);
        var v = await h.WaitFor("g", ModelStates.Downloaded);

        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(h.Store.ModelPath(v.StorageKey), "weights.bin")));
    }
}
