using System.Security.Cryptography;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.TestKit.S3;

namespace KServe.Node.Agent.Tests;

/// <summary>
/// S3 objects as real buckets hold them (multipart uploads, SSE-KMS, additional checksums, objects replaced while
/// read), served by the test kit's S3 stand-in because s3rver cannot produce them: verified when the source can
/// vouch for the bytes, never committed corrupt, never looping on an ETag that is not an MD5.
/// </summary>
public sealed class S3IntegrityTests
{
    private const int Part = 5 << 20;

    private static SourceSettings Settings(S3StandIn s3) => new([
        new("AWS_ENDPOINT_URL", s3.Endpoint), new("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), new("AWS_SECRET_ACCESS_KEY", "not-a-real-secret"),
    ]);

    private static async Task<ModelStatusView> Settled(EngineHarness h, string name)
    {
        var snap = await h.Engine.WaitForAsync(s => s.Any(v => v.StatusKey == name && v.State is ModelStates.Downloaded or ModelStates.Error), TimeSpan.FromSeconds(60));
        return snap.Single(v => v.StatusKey == name);
    }

    private static void AssertState(ModelStatusView v, string state) => Assert.True(v.State == state, $"{v.StatusKey}: {v.State} {v.Reason}: {v.Message}");

    private static DownloadOptions Options() => new()
    {
        Streams = 4, ChunkSizeBytes = 1 << 20, ReserveBytes = 0, MaxAttempts = 2,
        RetryDelay = TimeSpan.FromMilliseconds(10), RetryMaxDelay = TimeSpan.FromMilliseconds(20),
    };

    [Fact]
    public async Task A_multipart_object_is_verified_against_its_composite_ETag_and_every_GET_is_conditional()
    {
        await using var s3 = await S3StandIn.StartAsync();
        var data = TestData.Bytes((2 * Part) + 123_456, 71);
        var obj = s3.PutMultipart("models", "llm/weights.bin", data, Part);
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, Options());

        h.Engine.SetDesired([EngineHarness.Spec("mp", "s3://models/llm", Settings(s3))]);
        var v = await Settled(h, "mp");
        AssertState(v, ModelStates.Downloaded);

        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(v.Path, "weights.bin")));
        var manifest = h.Store.GetManifest(v.StorageKey)!.Files.Single();
        Assert.Equal(obj.ETag, manifest.Md5);
        Assert.EndsWith("-3", manifest.Md5, StringComparison.Ordinal);
        // The part layout was asked for, and every byte-range GET named the ETag it was planned against.
        Assert.Contains(s3.Requests, r => r.Method == "HEAD" && r.Target.Contains("partNumber=1", StringComparison.Ordinal));
        var gets = s3.GetsOf("models", "llm/weights.bin").ToList();
        Assert.True(gets.Count >= 8, $"expected one GET per 1 MiB chunk, saw {gets.Count}");
        Assert.All(gets, hd => Assert.Equal($"\"{obj.ETag}\"", hd["If-Match"]));
    }

    [Fact]
    public async Task A_corrupted_part_of_a_multipart_object_fails_the_checksum_and_nothing_is_committed()
    {
        await using var s3 = await S3StandIn.StartAsync();
        var data = TestData.Bytes((2 * Part) + 1000, 72);
        var obj = s3.PutMultipart("models", "llm/weights.bin", data, Part);
        obj.Corrupt[Part + 77] = (byte)(data[Part + 77] ^ 0xFF);
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, Options());

        h.Engine.SetDesired([EngineHarness.Spec("mp", "s3://models/llm", Settings(s3))]);
        var v = await Settled(h, "mp");
        AssertState(v, ModelStates.Error);

        Assert.Equal(nameof(FailureReason.ChecksumMismatch), v.Reason);
        Assert.Contains(obj.ETag, v.Message, StringComparison.Ordinal);
        Assert.Null(h.Store.GetManifest(v.StorageKey));
        Assert.Empty(TestData.Tree(Path.Combine(tmp.Path, "models")));
    }

    [Fact]
    public async Task An_SSE_KMS_object_whose_ETag_is_not_an_MD5_downloads_instead_of_failing_forever()
    {
        await using var s3 = await S3StandIn.StartAsync();
        var data = TestData.Bytes(3 << 20, 73);
        // SSE-KMS: 32 hex characters that are not the MD5 of the plaintext.
        var obj = s3.Put("models", "kms/weights.bin", data, etag: Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)));
        obj.ServerSideEncryption = "aws:kms";
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, Options());

        h.Engine.SetDesired([EngineHarness.Spec("kms", "s3://models/kms", Settings(s3))]);
        var v = await Settled(h, "kms");
        AssertState(v, ModelStates.Downloaded);

        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(v.Path, "weights.bin")));
        Assert.Null(h.Store.GetManifest(v.StorageKey)!.Files.Single().Md5);
    }

    [Fact]
    public async Task A_full_object_sha256_checksum_is_verified()
    {
        await using var s3 = await S3StandIn.StartAsync();
        var data = TestData.Bytes(2 << 20, 74);
        var good = s3.PutMultipart("models", "sum/good.bin", data, 1 << 20);
        good.ChecksumSha256 = Convert.ToBase64String(SHA256.HashData(data));
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, Options());

        h.Engine.SetDesired([EngineHarness.Spec("sum", "s3://models/sum", Settings(s3))]);
        var v = await Settled(h, "sum");
        AssertState(v, ModelStates.Downloaded);
        Assert.Equal(TestData.Sha256(data), h.Store.GetManifest(v.StorageKey)!.Files.Single().Sha256);
        Assert.Contains(s3.Requests, r => r.Method == "HEAD" && r.Headers.TryGetValue("x-amz-checksum-mode", out var m) && m == "ENABLED");

        // The same object claiming another SHA-256: the bytes are refused.
        var bad = s3.Put("models", "lie/bad.bin", data);
        bad.ChecksumSha256 = Convert.ToBase64String(SHA256.HashData(TestData.Bytes(16, 1)));
        h.Engine.SetDesired([EngineHarness.Spec("lie", "s3://models/lie", Settings(s3))]);
        var lie = await Settled(h, "lie");
        AssertState(lie, ModelStates.Error);
        Assert.Equal(nameof(FailureReason.ChecksumMismatch), lie.Reason);
        Assert.Null(h.Store.GetManifest(lie.StorageKey));
    }

    [Fact]
    public async Task An_object_replaced_mid_download_answers_412_and_is_never_mixed_with_the_old_bytes()
    {
        await using var s3 = await S3StandIn.StartAsync();
        var v1 = TestData.Bytes(6 << 20, 75);
        var v2 = TestData.Bytes(6 << 20, 76);
        var obj = s3.Put("models", "moving/weights.bin", v1);
        var gets = 0;
        obj.Served = o =>
        {
            // After a few chunks of version 1, someone uploads version 2 over it.
            if (Interlocked.Increment(ref gets) == 6)
            {
                o.Replace(v2);
            }
        };
        using var tmp = new TempDir();
        await using (var h = new EngineHarness(tmp.Path, Options()))
        {
            h.Engine.SetDesired([EngineHarness.Spec("moving", "s3://models/moving", Settings(s3))]);
            var failed = await Settled(h, "moving");
            AssertState(failed, ModelStates.Error);
            Assert.Equal(nameof(FailureReason.SourceChanged), failed.Reason);
            Assert.Null(h.Store.GetManifest(failed.StorageKey));
            Assert.Empty(TestData.Tree(Path.Combine(tmp.Path, "models")));
        }
        Assert.Contains(s3.Requests, r => r.Method == "GET" && r.Headers.ContainsKey("If-Match"));

        // The next attempt plans against version 2 and gets exactly its bytes.
        obj.Served = null;
        await using var again = new EngineHarness(tmp.Path, Options());
        again.Engine.SetDesired([EngineHarness.Spec("moving", "s3://models/moving", Settings(s3))]);
        var done = await Settled(again, "moving");
        AssertState(done, ModelStates.Downloaded);
        Assert.Equal(TestData.Sha256(v2), TestData.Sha256File(Path.Combine(done.Path, "weights.bin")));
    }
}
