using System.Diagnostics;
using System.Text;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>Malformed and hostile bodies at every route: only 4xx answers, the server keeps serving, memory stays bounded.</summary>
// Alone: the memory bound is read from this process's working set, which other test classes loading models and
// servers in parallel would inflate.
[Collection(nameof(MeasuresProcessMemory))]
public sealed class FuzzTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static readonly string[] Routes =
    [
        "v1/chat/completions", "v1/completions", "v1/embeddings", "openai/v1/chat/completions", "openai/v1/completions",
        "openai/v1/embeddings", "tokenize", "detokenize", "apply-template",
    ];

    private static IEnumerable<byte[]> Bodies(Random rng)
    {
        static byte[] U(string s) => Encoding.UTF8.GetBytes(s);
        yield return [];
        yield return U("null");
        yield return U("[]");
        yield return U("\"just a string\"");
        yield return U("12345");
        yield return U("{");
        yield return U("{\"messages\":");
        yield return U(new string('[', 100_000));
        yield return U("{\"a\":" + new string('[', 2000) + new string(']', 2000) + "}");
        yield return U("{\"messages\":[{\"role\":\"user\",\"content\":" + new string('{', 500) + "}]}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('A', 2_000_000) + "\"}],\"max_tokens\":1}");
        yield return U("{\"model\":\"tiny\",\"prompt\":\"" + new string('z', 500_000) + "\",\"max_tokens\":1}");
        yield return U("{\"model\":\"tiny\",\"content\":\"" + new string('q', 300_000) + "\",\"input\":[\"x\"]}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}],\"max_tokens\":1}");
        yield return [.. U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\""), 0xff, 0xfe, 0xc3, .. U("\"}]}")];
        yield return U("{\"model\":[],\"messages\":{},\"prompt\":7,\"input\":true,\"tokens\":\"x\",\"content\":[1]}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":-1,\"max_tokens\":-5,\"temperature\":1e308,\"top_p\":\"NaN\"}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"-7\":1,\"1e9\":2},\"stop\":{\"a\":1}}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"$ref\":\"#/nowhere\"}}}}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":\"spaceship\"}}}}");
        yield return U("{\"model\":\"tiny\",\"tokens\":[99999999999, -3, 1.5]}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"role\":\"tool\"}]}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":[],\"arguments\":{}}}]},{\"role\":\"tool\",\"content\":[]}]}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"$ref\":\"#/a/b\"}}}],\"tool_choice\":\"required\",\"max_tokens\":2}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":" + new string('{', 300) + "}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":7}}}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[" + string.Join(",", Enumerable.Range(0, 200).Select(i => $"{{\"type\":\"function\",\"function\":{{\"name\":\"f{i}\"}}}}")) + "],\"tool_choice\":\"required\",\"max_tokens\":1}");
        yield return U("{\"model\":\"tiny\",\"input\":[[1,2],[\"a\"]]}");
        yield return U("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":5}]}]}");
        yield return U("{\"model\":\"tiny\",\"messages\":[" + string.Join(",", Enumerable.Repeat("{\"role\":\"user\",\"content\":\"" + new string('m', 100) + "\"}", 5000)) + "]}");
        for (var i = 0; i < 20; i++)
        {
            var noise = new byte[rng.Next(1, 4000)];
            rng.NextBytes(noise);
            yield return noise;
        }
    }

    [Fact]
    public async Task Hostile_bodies_get_only_4xx_and_the_server_keeps_serving_in_bounded_memory()
    {
        var http = fixture.Server.Http;
        var rng = new Random(1234);
        var bodies = Bodies(rng).ToList();
        using var process = Process.GetCurrentProcess();
        GC.Collect();
        process.Refresh();
        var before = process.WorkingSet64;
        var statuses = new List<string>();
        for (var round = 0; round < 2; round++)
        {
            foreach (var route in Routes)
            {
                foreach (var body in bodies)
                {
                    using var content = new ByteArrayContent(body);
                    content.Headers.ContentType = new("application/json");
                    using var r = await http.PostAsync(route, content);
                    var status = (int)r.StatusCode;
                    if (status is < 400 or >= 500)
                    {
                        // A body the server accepted must be a well-formed request that it answered.
                        Assert.True(status == 200, $"{route} answered {status} to a {body.Length}-byte body: {await r.Content.ReadAsStringAsync()}");
                    }
                    statuses.Add($"{route}:{status}");
                }
            }
        }
        Assert.DoesNotContain(statuses, s => s.EndsWith(":500", StringComparison.Ordinal));
        // Still serving, and readiness unaffected.
        Assert.Equal(200, (await Raw.GetAsync(http, "v2/health/ready")).Status);
        var (ok, _, _) = await Raw.PostAsync(http, "v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"still there?"}],"max_tokens":2}""");
        Assert.Equal(200, ok);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        process.Refresh();
        var grown = process.WorkingSet64 - before;
        Assert.True(grown < 512L << 20, $"working set grew by {grown >> 20} MiB");
    }
}

[CollectionDefinition(nameof(MeasuresProcessMemory), DisableParallelization = true)]
public sealed class MeasuresProcessMemory;
