using System.Net;
using System.Text.Json;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Agent.Tests.Servers;
using Microsoft.AspNetCore.Http;

namespace KServe.Node.Agent.Tests;

/// <summary>Sources that redirect elsewhere or answer the wrong bytes: credentials stay home, nothing corrupt is committed.</summary>
public sealed class HostileSourceTests
{
    private static DownloadOptions FewRetries() => new()
    {
        Streams = 2, ChunkSizeBytes = 1 << 20, ReserveBytes = 0, MaxAttempts = 2,
        RetryDelay = TimeSpan.FromMilliseconds(10), RetryMaxDelay = TimeSpan.FromMilliseconds(20),
    };

    [Fact]
    public async Task Custom_headers_from_secrets_go_to_their_own_origin_only_even_across_redirects()
    {
        await using var home = await ScriptedOrigin.StartAsync();
        await using var elsewhere = await ScriptedOrigin.StartAsync();
        var data = TestData.Bytes(3 << 20, 41);
        home.Redirect("/moved.bin", $"{elsewhere.BaseUrl}/m.bin");
        elsewhere.File("/m.bin", data);
        home.Redirect("/renamed.bin", "/m.bin");
        home.File("/m.bin", data);
        var settings = new SourceSettings([new("127.0.0.1-headers", """{"X-Api-Key":"key-from-a-secret","Cookie":"session=s3cr3t"}""")]);
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, FewRetries());

        h.Engine.SetDesired([
            EngineHarness.Spec("cross", $"{home.BaseUrl}/moved.bin", settings),
            EngineHarness.Spec("same", $"{home.BaseUrl}/renamed.bin", settings),
        ]);
        var cross = await h.WaitFor("cross", ModelStates.Downloaded);
        var same = await h.WaitFor("same", ModelStates.Downloaded);

        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(cross.Path, "moved.bin")));
        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(same.Path, "renamed.bin")));
        // The origin the secret belongs to got it on every request, the redirect target on none.
        Assert.All(home.HeadersFor("/moved.bin"), hd => Assert.Equal("key-from-a-secret", hd["X-Api-Key"]));
        Assert.NotEmpty(elsewhere.HeadersFor("/m.bin"));
        Assert.All(elsewhere.HeadersFor("/m.bin"), hd =>
        {
            Assert.False(hd.ContainsKey("X-Api-Key"), "X-Api-Key reached the other origin");
            Assert.False(hd.ContainsKey("Cookie"), "Cookie reached the other origin");
        });
        // A redirect within the origin keeps them (same scheme, host and port).
        Assert.All(home.HeadersFor("/m.bin"), hd => Assert.Equal("key-from-a-secret", hd["X-Api-Key"]));
    }

    [Fact]
    public async Task An_https_source_redirecting_to_plain_http_is_refused()
    {
        // A stand-in handler (no TLS origin with a trusted certificate can run here): the policy is what is tested.
        using var http = new HttpClient(new StubHandler(req => req.RequestUri!.Scheme == "https"
            ? new HttpResponseMessage(HttpStatusCode.Found) { Headers = { Location = new Uri("http://mirror.example/w.bin") } }
            : new HttpResponseMessage(HttpStatusCode.OK)));
        var e = await Assert.ThrowsAsync<DownloadException>(() => Redirects.SendAsync(http, new Uri("https://models.example/w.bin?X-Amz-Signature=abc"),
            (u, _) => new HttpRequestMessage(HttpMethod.Get, u), HttpCompletionOption.ResponseHeadersRead, CancellationToken.None));
        Assert.Equal(FailureReason.UnsafeRedirect, e.Reason);
        Assert.Equal("https://models.example/w.bin redirected to http://mirror.example/w.bin: an https source may not send the download to plain http", e.Message);
    }

    [Fact]
    public async Task The_hub_token_is_not_handed_to_another_host_by_a_next_page_link_or_plain_http()
    {
        await using var hub = await ScriptedOrigin.StartAsync();
        await using var other = await ScriptedOrigin.StartAsync();
        hub.On("/api/models/acme/m/revision/main", ctx => ctx.Response.WriteAsync("""{"sha":"0123456789abcdef"}"""));
        hub.On("/api/models/acme/m/tree/0123456789abcdef", ctx =>
        {
            ctx.Response.Headers.Link = $"<{other.BaseUrl}/api/models/acme/m/tree/0123456789abcdef?page=2>; rel=\"next\"";
            return ctx.Response.WriteAsync("""[{"type":"file","path":"a.bin","size":1}]""");
        });
        var settings = new SourceSettings([new("HF_ENDPOINT", hub.BaseUrl), new("HF_TOKEN", "hf_token_abc")]);
        using var http = SourceFactory.CreateHttpClient();
        using var source = new HubSource("hf://acme/m", settings, http);

        var e = await Assert.ThrowsAsync<DownloadException>(() => source.ListAsync(CancellationToken.None));
        Assert.Equal(FailureReason.UnsafeRedirect, e.Reason);
        Assert.Contains("points to another host", e.Message, StringComparison.Ordinal);
        Assert.Empty(other.Requests);
        Assert.All(hub.Requests, r => Assert.Equal("Bearer hf_token_abc", r.Headers["Authorization"]));

        var plain = Assert.Throws<DownloadException>(() => new HubSource("hf://acme/m",
            new SourceSettings([new("HF_ENDPOINT", "http://hub.internal.example"), new("HF_TOKEN", "hf_token_abc")]), http));
        Assert.Equal(FailureReason.UnsafeRedirect, plain.Reason);
        Assert.DoesNotContain("hf_token_abc", plain.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_206_with_another_range_than_asked_is_never_written_and_nothing_is_committed()
    {
        await using var origin = await ScriptedOrigin.StartAsync();
        var data = TestData.Bytes(3 << 20, 42);
        origin.On("/w.bin", async ctx =>
        {
            ctx.Response.Headers.AcceptRanges = "bytes";
            ctx.Response.Headers.ETag = "\"v1\"";
            ctx.Response.ContentLength = data.Length;
            if (HttpMethods.IsHead(ctx.Request.Method))
            {
                return;
            }
            if (ctx.Request.Headers.Range.Count == 0)
            {
                await ctx.Response.Body.WriteAsync(data);
                return;
            }
            // Always the first MiB, whatever was asked: a broken cache or proxy in front of the origin.
            ctx.Response.StatusCode = 206;
            ctx.Response.ContentLength = 1 << 20;
            ctx.Response.Headers.ContentRange = $"bytes 0-{(1 << 20) - 1}/{data.Length}";
            await ctx.Response.Body.WriteAsync(data.AsMemory(0, 1 << 20));
        });
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, FewRetries());

        h.Engine.SetDesired([EngineHarness.Spec("m", $"{origin.BaseUrl}/w.bin")]);
        var v = await h.WaitFor("m", ModelStates.Error);

        // Whichever later chunk a stream asked for first, the answer was the first MiB: refused.
        Assert.Matches(@"answered bytes 0-1048575 to a request for (1048576-2097151|2097152-3145727)$", v.Message);
        Assert.Null(h.Store.GetManifest(v.StorageKey));
        Assert.Empty(TestData.Tree(Path.Combine(tmp.Path, "models")));
    }

    [Fact]
    public async Task A_model_the_source_gives_no_checksum_for_is_committed_but_says_it_was_checked_by_size_only()
    {
        await using var origin = await ScriptedOrigin.StartAsync();
        origin.File("/plain.bin", TestData.Bytes(2 << 20, 44));
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, FewRetries());

        h.Engine.SetDesired([EngineHarness.Spec("plain", $"{origin.BaseUrl}/plain.bin")]);
        var v = await h.WaitFor("plain", ModelStates.Downloaded);

        Assert.Equal("1 of 1 files verified by size only: the source offers no checksum for them", v.Message);
        var manifest = h.Store.GetManifest(v.StorageKey)!;
        Assert.Equal(KServe.Node.Agent.Store.Verification.SizeOnly, manifest.Verification);
        Assert.True(AgentMetrics.UnverifiedFiles.Value >= 1, "kserve_node_unverified_files counts it");
    }

    [Fact]
    public async Task A_close_delimited_body_without_length_or_checksum_is_refused_and_nothing_is_committed()
    {
        var data = TestData.Bytes(3 << 20, 45);
        await using var origin = new CloseDelimitedOrigin(data) { SendBytes = 1 << 20 };
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, FewRetries());

        h.Engine.SetDesired([EngineHarness.Spec("m", origin.Url("/w.bin"))]);
        var v = await h.WaitFor("m", ModelStates.Error);

        // A third of the file arrived and the connection closed: that looks exactly like a whole file.
        Assert.Equal(nameof(FailureReason.Unverifiable), v.Reason);
        Assert.Contains("neither a length nor a checksum", v.Message, StringComparison.Ordinal);
        Assert.Null(h.Store.GetManifest(v.StorageKey));
        Assert.Empty(TestData.Tree(Path.Combine(tmp.Path, "models")));
    }

    [Fact]
    public async Task A_truncated_close_delimited_body_with_a_digest_fails_its_checksum_and_the_whole_one_is_verified()
    {
        var data = TestData.Bytes(3 << 20, 46);
        await using var origin = new CloseDelimitedOrigin(data) { SendBytes = 1 << 20 };
        origin.Headers.Add($"Repr-Digest: sha-256=:{Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(data))}:");
        using var tmp = new TempDir();
        await using (var h = new EngineHarness(tmp.Path, FewRetries()))
        {
            h.Engine.SetDesired([EngineHarness.Spec("m", origin.Url("/w.bin"))]);
            var v = await h.WaitFor("m", ModelStates.Error);
            Assert.Equal(nameof(FailureReason.ChecksumMismatch), v.Reason);
            Assert.Null(h.Store.GetManifest(v.StorageKey));
            Assert.Empty(TestData.Tree(Path.Combine(tmp.Path, "models")));
        }

        origin.SendBytes = null;
        await using (var h = new EngineHarness(tmp.Path, FewRetries()))
        {
            h.Engine.SetDesired([EngineHarness.Spec("m", origin.Url("/w.bin"))]);
            var v = await h.WaitFor("m", ModelStates.Downloaded);
            Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(v.Path, "w.bin")));
            var manifest = h.Store.GetManifest(v.StorageKey)!;
            Assert.Equal(KServe.Node.Agent.Store.Verification.Checksum, manifest.Verification);
            Assert.Equal(TestData.Sha256(data), manifest.Files.Single().Sha256);
        }
    }

    [Fact]
    public async Task A_file_of_unknown_size_is_held_to_the_storage_limit_while_it_streams()
    {
        await using var server = await RangeHttpServer.StartAsync();
        server.AddFile("endless.bin", TestData.Bytes(6 << 20, 47));
        server.Unsized["endless.bin"] = true;
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, FewRetries());
        h.Engine.StorageLimitBytes = 2 << 20;

        h.Engine.SetDesired([EngineHarness.Spec("m", server.BaseUrl + "/endless.bin")]);
        var v = await h.WaitFor("m", ModelStates.Error);

        Assert.Equal(nameof(FailureReason.StorageLimitExceeded), v.Reason);
        Assert.Contains("endless.bin has no length and has grown past what the storage limit leaves for it (2 MiB)", v.Message, StringComparison.Ordinal);
        Assert.Empty(TestData.Tree(Path.Combine(tmp.Path, "models")));
    }

    [Fact]
    public async Task A_ranged_request_answered_with_the_whole_file_is_refused_and_nothing_is_committed()
    {
        await using var origin = await ScriptedOrigin.StartAsync();
        var data = TestData.Bytes(3 << 20, 48);
        origin.On("/w.bin", async ctx =>
        {
            // Says it takes ranges, then answers every GET with the whole file (200): a proxy that drops Range.
            ctx.Response.Headers.AcceptRanges = "bytes";
            ctx.Response.Headers.ETag = "\"v1\"";
            ctx.Response.ContentLength = data.Length;
            if (!HttpMethods.IsHead(ctx.Request.Method))
            {
                await ctx.Response.Body.WriteAsync(data);
            }
        });
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, FewRetries());

        h.Engine.SetDesired([EngineHarness.Spec("m", $"{origin.BaseUrl}/w.bin")]);
        var v = await h.WaitFor("m", ModelStates.Error);

        // The first chunk (bytes 0-) is the file's start either way; a later one would have been written wrong.
        Assert.Contains("ignored the byte range request (status 200)", v.Message, StringComparison.Ordinal);
        Assert.Contains(origin.HeadersFor("/w.bin"), hd => hd.TryGetValue("Range", out var r) && r.StartsWith("bytes=1048576-", StringComparison.Ordinal));
        Assert.Null(h.Store.GetManifest(v.StorageKey));
        Assert.Empty(TestData.Tree(Path.Combine(tmp.Path, "models")));
    }

    [Fact]
    public async Task Accept_Ranges_gone_on_resume_refetches_the_file_from_its_first_byte()
    {
        await using var origin = await ScriptedOrigin.StartAsync();
        var data = TestData.Bytes(3 << 20, 49);
        var ranges = true;
        origin.On("/w.bin", async ctx =>
        {
            ctx.Response.Headers.ETag = "\"v1\"";
            if (ranges)
            {
                ctx.Response.Headers.AcceptRanges = "bytes";
            }
            if (HttpMethods.IsHead(ctx.Request.Method))
            {
                ctx.Response.ContentLength = data.Length;
                return;
            }
            if (ranges && ctx.Request.Headers.Range.ToString() is var range && range.StartsWith("bytes=", StringComparison.Ordinal))
            {
                var (from, to) = (long.Parse(range[6..].Split('-')[0], System.Globalization.CultureInfo.InvariantCulture), long.Parse(range.Split('-')[1], System.Globalization.CultureInfo.InvariantCulture));
                if (from > 0)
                {
                    // The first run gets the first chunk only: the rest fails.
                    ctx.Response.StatusCode = 503;
                    return;
                }
                ctx.Response.StatusCode = 206;
                ctx.Response.ContentLength = to - from + 1;
                ctx.Response.Headers.ContentRange = $"bytes {from}-{to}/{data.Length}";
                await ctx.Response.Body.WriteAsync(data.AsMemory((int)from, (int)(to - from + 1)));
                return;
            }
            // After the flip: no ranges, the whole file every time.
            ctx.Response.ContentLength = data.Length;
            await ctx.Response.Body.WriteAsync(data);
        });
        using var tmp = new TempDir();
        await using (var h = new EngineHarness(tmp.Path, FewRetries()))
        {
            h.Engine.SetDesired([EngineHarness.Spec("m", $"{origin.BaseUrl}/w.bin")]);
            await h.WaitFor("m", ModelStates.Error);
        }
        var journalled = Directory.GetFiles(Path.Combine(tmp.Path, ".staging"), "*", SearchOption.AllDirectories);
        Assert.NotEmpty(journalled);

        ranges = false;
        await using (var h = new EngineHarness(tmp.Path, FewRetries()))
        {
            h.Engine.SetDesired([EngineHarness.Spec("m", $"{origin.BaseUrl}/w.bin")]);
            var v = await h.WaitFor("m", ModelStates.Downloaded);
            // The first MiB on disk was kept from before only if the new plan could trust it; the rest must be the
            // file's bytes, not the zeros a preallocated file holds.
            Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(v.Path, "w.bin")));
        }
    }

    [Fact]
    public async Task A_url_that_refuses_HEAD_like_a_presigned_GET_is_probed_with_its_first_byte_and_fetched_in_ranges()
    {
        await using var origin = await ScriptedOrigin.StartAsync();
        var data = TestData.Bytes(3 << 20, 50);
        origin.On("/signed.bin", ctx =>
        {
            if (HttpMethods.IsHead(ctx.Request.Method))
            {
                // S3 answers a HEAD on a URL signed for GET with 403 SignatureDoesNotMatch.
                ctx.Response.StatusCode = 403;
                return Task.CompletedTask;
            }
            return Results.Bytes(data, "application/octet-stream", enableRangeProcessing: true,
                entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue("\"v1\"")).ExecuteAsync(ctx);
        });
        using var tmp = new TempDir();
        await using var h = new EngineHarness(tmp.Path, FewRetries());

        h.Engine.SetDesired([EngineHarness.Spec("m", $"{origin.BaseUrl}/signed.bin?X-Amz-Signature=abc")]);
        var v = await h.WaitFor("m", ModelStates.Downloaded);

        Assert.Equal(TestData.Sha256(data), TestData.Sha256File(Path.Combine(v.Path, "signed.bin")));
        var ranges = origin.HeadersFor("/signed.bin").Select(hd => hd.GetValueOrDefault("Range")).ToList();
        Assert.Contains("bytes=0-0", ranges);
        // The size came from the probe, so the file was fetched in parallel 1 MiB chunks.
        Assert.Contains("bytes=2097152-3145727", ranges);
    }

    [Theory]
    [InlineData("../escape.bin")]
    [InlineData("/etc/passwd")]
    [InlineData("weights//double.bin")]
    [InlineData("a/./b.bin")]
    [InlineData("a\\b.bin")]
    public void Names_that_could_leave_the_model_folder_are_refused_with_the_name(string name)
    {
        var e = Assert.Throws<DownloadException>(() => PathGuard.Validate(name, "s3://bucket/prefix"));
        Assert.Equal(FailureReason.UnsafePath, e.Reason);
        Assert.Contains("s3://bucket/prefix", e.Message, StringComparison.Ordinal);
    }

    private sealed class StubHandler(Func<HttpRequestMessage, HttpResponseMessage> answer) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(answer(request));
    }
}

/// <summary>What sources say about their bytes, and names that must not reach the Hub's API paths.</summary>
public sealed class SourceHeaderTests
{
    [Theory]
    [InlineData("hf://acme/../admin")]
    [InlineData("hf://acme/m?x=1")]
    [InlineData("hf://acme/m%2F..")]
    [InlineData("hf://.hidden/m")]
    [InlineData("hf://acme/m:../../main")]
    public void Hub_names_outside_the_hubs_own_rule_are_refused(string uri)
    {
        var e = Assert.Throws<DownloadException>(() => HubSource.Parse(uri));
        Assert.Equal(FailureReason.InvalidUri, e.Reason);
    }

    [Fact]
    public void Hub_names_the_hub_allows_are_accepted() =>
        Assert.Equal(("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "v1.0"), HubSource.Parse("hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF:v1.0"));

    [Fact]
    public async Task RFC_3230_Digest_and_GCS_x_goog_hash_headers_are_checksums_too()
    {
        await using var origin = await ScriptedOrigin.StartAsync();
        var data = TestData.Bytes(1000, 43);
        var sha = Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(data));
        origin.On("/digest.bin", ctx =>
        {
            ctx.Response.Headers["Digest"] = $"SHA-256={sha}";
            ctx.Response.ContentLength = data.Length;
            return Task.CompletedTask;
        });
        origin.On("/goog.bin", ctx =>
        {
            ctx.Response.Headers["x-goog-hash"] = "crc32c=AAAAAA==,md5=1B2M2Y8AsgTpgAmY7PhCfg==";
            ctx.Response.ContentLength = 0;
            return Task.CompletedTask;
        });
        using var http = SourceFactory.CreateHttpClient();
        using var digest = new HttpSource($"{origin.BaseUrl}/digest.bin", SourceSettings.Empty, http);
        Assert.Equal(TestData.Sha256(data), (await digest.ListAsync(CancellationToken.None)).Single().Sha256);
        using var goog = new HttpSource($"{origin.BaseUrl}/goog.bin", SourceSettings.Empty, http);
        Assert.Equal("d41d8cd98f00b204e9800998ecf8427e", (await goog.ListAsync(CancellationToken.None)).Single().Md5);
    }

    [Fact]
    public async Task An_index_page_that_never_ends_is_refused_instead_of_read_into_memory()
    {
        await using var origin = await ScriptedOrigin.StartAsync();
        origin.On("/repo/", async ctx =>
        {
            var junk = new byte[1 << 20];
            for (var i = 0; i < 64 && !ctx.RequestAborted.IsCancellationRequested; i++)
            {
                await ctx.Response.Body.WriteAsync(junk, ctx.RequestAborted);
            }
        });
        using var http = SourceFactory.CreateHttpClient();
        using var source = new HttpSource($"{origin.BaseUrl}/repo/", SourceSettings.Empty, http);
        var e = await Assert.ThrowsAsync<DownloadException>(() => source.ListAsync(CancellationToken.None));
        Assert.Contains("larger than 16 MiB", e.Message, StringComparison.Ordinal);
    }
}
