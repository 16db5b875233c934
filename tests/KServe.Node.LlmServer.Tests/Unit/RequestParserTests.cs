using System.Text;
using KServe.Node.LlmServer.Api;

namespace KServe.Node.LlmServer.Tests.Unit;

public sealed class RequestParserTests
{
    private static ApiException Fails(string body, bool chat = true)
    {
        return Assert.Throws<ApiException>(() =>
        {
            using var doc = GenerationRequestParser.ParseBody(Encoding.UTF8.GetBytes(body));
            _ = chat ? GenerationRequestParser.ParseChat(doc.RootElement) : GenerationRequestParser.ParseCompletion(doc.RootElement);
        });
    }

    private static ParsedRequest Chat(string body)
    {
        using var doc = GenerationRequestParser.ParseBody(Encoding.UTF8.GetBytes(body));
        return GenerationRequestParser.ParseChat(doc.RootElement);
    }

    [Theory]
    [InlineData("{", null)]
    [InlineData("[1,2]", null)]
    [InlineData("", null)]
    [InlineData("{}", "messages")]
    [InlineData("{\"messages\":\"hi\"}", "messages")]
    [InlineData("{\"messages\":[]}", "messages")]
    [InlineData("{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role")]
    [InlineData("{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[0].role")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages[0].content[0].type")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", "temperature")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":9}", "temperature")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}", "max_tokens")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", "max_tokens")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":1000}", "n")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}", "stop")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"abc\":1}}", "logit_bias")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"5\":500}}", "logit_bias")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}", "stream")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"xml\"}}", "response_format.type")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\"}}", "response_format.json_schema")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":3}", "top_logprobs")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":7}", "model")]
    public void Bad_chat_bodies_are_400_naming_the_param(string body, string? param)
    {
        var e = Fails(body);
        Assert.Equal(400, e.Status);
        Assert.Equal("invalid_request_error", e.Type);
        Assert.Equal(param, e.Param);
    }

    [Fact]
    public void Deep_nesting_is_a_json_error_not_a_crash()
    {
        var body = "{\"messages\":" + new string('[', 5000) + new string(']', 5000) + "}";
        var e = Fails(body);
        Assert.Equal(400, e.Status);
        Assert.Null(e.Param);
    }

    [Fact]
    public void Invalid_utf8_is_a_json_error()
    {
        var bytes = Encoding.UTF8.GetBytes("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
        bytes[^5] = 0xff;
        var e = Assert.Throws<ApiException>(() => GenerationRequestParser.ParseBody(bytes));
        Assert.Equal(400, e.Status);
    }

    [Fact]
    public void Completion_requires_prompt()
    {
        Assert.Equal("prompt", Fails("{\"model\":\"m\"}", chat: false).Param);
    }

    [Fact]
    public void Accepted_fields_are_read_and_unknown_ones_ignored()
    {
        var r = Chat("""
            {"model":"m","messages":[{"role":"developer","content":"sys"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
             "max_completion_tokens":7,"max_tokens":99,"temperature":0.5,"top_p":0.9,"top_k":20,"min_p":0.1,"seed":3,
             "stop":"END","presence_penalty":0.5,"frequency_penalty":-0.5,"logit_bias":{"42":-100},"n":2,"logprobs":true,
             "top_logprobs":2,"stream":true,"stream_options":{"include_usage":true},"response_format":{"type":"json_object"},
             "user":"u1","some_future_field":{"x":[1,2,3]}}
            """);
        Assert.Equal("m", r.Model);
        Assert.Equal(["system", "user"], r.Messages!.Select(m => m.Role));
        Assert.Equal("a\nb", r.Messages![1].Content);
        Assert.Equal(7, r.MaxTokens);
        Assert.Equal(0.5f, r.Temperature);
        Assert.Equal(20, r.TopK);
        Assert.Equal(3, r.Seed);
        Assert.Equal(["END"], r.Stop);
        Assert.Equal(-100f, r.LogitBias[42]);
        Assert.Equal(2, r.N);
        Assert.True(r.Logprobs);
        Assert.Equal(2, r.TopLogprobs);
        Assert.True(r.Stream);
        Assert.True(r.IncludeUsage);
        Assert.Equal(ResponseFormatKind.JsonObject, r.ResponseFormat);
        Assert.Equal("u1", r.User);
    }
}
