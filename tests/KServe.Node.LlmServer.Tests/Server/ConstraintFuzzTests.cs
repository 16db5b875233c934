using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>
/// Request-controlled input that reaches native code: JSON schemas, grammars through tools, logit biases, token
/// prompts, min_tokens and stop token ids. llama.cpp aborts the process when a grammar is driven to a dead end;
/// here every such request must get a 200 or a 4xx and the server must keep serving after each one.
/// </summary>
public sealed class ConstraintFuzzTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private RunningServer S => fixture.Server;

    private async Task AssertAliveAsync(string after)
    {
        var (status, _, _) = await Raw.PostAsync(S.Http, "v1/completions", """{"model":"tiny","prompt":"alive?","max_tokens":1}""");
        Assert.True(status == 200, $"the server stopped answering after {after}");
    }

    private async Task<int> LastTokenAsync(string text) => (await S.TokenizeAsync(text))[^1];

    [Fact]
    public async Task A_grammar_driven_to_a_dead_end_is_a_400_and_the_server_keeps_serving()
    {
        // json_object, with "{" and "}" pushed up: the object closes at once, then at most a little whitespace and an ending may follow,
        // and min_tokens forbids it. llama.cpp's sampler would accept an excluded token and abort the process.
        var open = await LastTokenAsync("a{");
        var close = await LastTokenAsync("a}");
        var body = $$"""{"model":"tiny","messages":[{"role":"user","content":"json"}],"response_format":{"type":"json_object"},"min_tokens":60,"max_tokens":64,"logit_bias":{"{{open}}":100,"{{close}}":100},"temperature":0}""";
        var (status, doc, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", body);
        Assert.True(status == 400, doc?.RootElement.GetRawText());
        Raw.AssertError(doc, null, "no_valid_token");
        var (_, stream) = await Raw.StreamAsync(S.Http, "v1/chat/completions", body.Replace("\"temperature\":0", "\"temperature\":0,\"stream\":true", StringComparison.Ordinal));
        Assert.Contains("no_valid_token", System.Text.Encoding.UTF8.GetString(stream), StringComparison.Ordinal);
        await AssertAliveAsync("a dead-end grammar");
    }

    private static JsonObject Schema(Random rng, int depth)
    {
        var kinds = depth > 2 ? new[] { "string", "integer", "number", "boolean", "enum", "const" } : ["string", "integer", "number", "boolean", "enum", "const", "object", "array", "anyOf"];
        return kinds[rng.Next(kinds.Length)] switch
        {
            "string" => rng.Next(2) == 0 ? new JsonObject { ["type"] = "string" } : new JsonObject { ["type"] = "string", ["minLength"] = rng.Next(0, 3), ["maxLength"] = rng.Next(3, 8) },
            "integer" => new JsonObject { ["type"] = "integer", ["minimum"] = rng.Next(-50, 0), ["maximum"] = rng.Next(0, 50) },
            "number" => new JsonObject { ["type"] = "number" },
            "boolean" => new JsonObject { ["type"] = "boolean" },
            "enum" => new JsonObject { ["enum"] = new JsonArray("a", "bb", 3, null, true) },
            "const" => new JsonObject { ["const"] = rng.Next(2) == 0 ? "fixed" : 42 },
            "object" => Object(rng, depth),
            "array" => new JsonObject { ["type"] = "array", ["items"] = Schema(rng, depth + 1), ["minItems"] = rng.Next(0, 2), ["maxItems"] = rng.Next(2, 4) },
            _ => new JsonObject { ["anyOf"] = new JsonArray(Schema(rng, depth + 1), Schema(rng, depth + 1)) },
        };
    }

    private static JsonObject Object(Random rng, int depth)
    {
        var properties = new JsonObject();
        var required = new JsonArray();
        for (var i = 0; i < rng.Next(1, 4); i++)
        {
            properties[$"p{i}"] = Schema(rng, depth + 1);
            if (rng.Next(2) == 0)
            {
                required.Add($"p{i}");
            }
        }
        return new JsonObject { ["type"] = "object", ["properties"] = properties, ["required"] = required, ["additionalProperties"] = rng.Next(3) == 0 };
    }

    [Fact]
    public async Task Random_schemas_biases_and_token_limits_get_a_200_or_a_4xx_and_never_end_the_server()
    {
        var rng = new Random(20261203);
        var vocab = S.Model.Engine.Model.VocabSize;
        var statuses = new Dictionary<int, int>();
        for (var i = 0; i < 40; i++)
        {
            var request = new JsonObject
            {
                ["model"] = "tiny",
                ["max_tokens"] = rng.Next(1, 24),
                ["temperature"] = rng.Next(3) == 0 ? 0 : rng.NextDouble() * 2,
                ["min_tokens"] = rng.Next(4) == 0 ? rng.Next(0, 30) : 0,
            };
            var bias = new JsonObject();
            for (var b = 0; b < rng.Next(0, 40); b++)
            {
                bias[rng.Next(0, vocab).ToString(System.Globalization.CultureInfo.InvariantCulture)] = rng.Next(2) == 0 ? -100 : rng.Next(-100, 101);
            }
            request["logit_bias"] = bias;
            if (rng.Next(3) == 0)
            {
                request["stop_token_ids"] = new JsonArray(rng.Next(0, vocab), 2);
            }
            string route;
            if (rng.Next(4) == 0)
            {
                route = "v1/completions";
                request["prompt"] = new JsonArray([.. Enumerable.Range(0, rng.Next(1, 30)).Select(_ => (JsonNode)rng.Next(0, vocab))]);
            }
            else
            {
                route = "v1/chat/completions";
                request["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "answer" });
                switch (rng.Next(3))
                {
                    case 0:
                        request["response_format"] = new JsonObject { ["type"] = "json_object" };
                        break;
                    case 1:
                        request["response_format"] = new JsonObject { ["type"] = "json_schema", ["json_schema"] = new JsonObject { ["name"] = "s", ["schema"] = Object(rng, 0) } };
                        break;
                    default:
                        request["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "f", ["parameters"] = Object(rng, 0) } });
                        request["tool_choice"] = "required";
                        break;
                }
            }
            var json = request.ToJsonString();
            var (status, body, _) = await Raw.PostAsync(S.Http, route, json);
            Assert.True(status is 200 or (>= 400 and < 500), $"{status} for {json}: {body?.RootElement.GetRawText()}");
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            await AssertAliveAsync(json);
        }
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(", ", statuses.Select(s => $"{s.Value} x {s.Key}")));
        Assert.True(statuses.GetValueOrDefault(200) > 10, "most requests should be valid and answered");
    }
}
