using System.Text.Json;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>The request fields that shape the prompt, over HTTP: add_generation_prompt, continue_final_message, chat_template_kwargs.</summary>
public sealed class PromptRequestTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private RunningServer S => fixture.Server;

    private const string Prefill = """[{"role":"user","content":"What is 2+2?"},{"role":"assistant","content":"The answer is"}]""";

    private static async Task<string> PromptAsync(RunningServer s, string body)
    {
        var (status, doc, _) = await Raw.PostAsync(s.Http, "apply-template", body);
        Assert.Equal(200, status);
        return doc!.RootElement.GetProperty("prompt").GetString()!;
    }

    [Fact]
    public async Task Continue_final_message_leaves_the_assistant_turn_open_for_prompt_and_generation()
    {
        var body = $$"""{"model":"tiny","messages":{{Prefill}},"continue_final_message":true,"add_generation_prompt":false,"max_tokens":1}""";
        var prompt = await PromptAsync(S, body);
        Assert.EndsWith("<|im_start|>assistant\nThe answer is", prompt, StringComparison.Ordinal);
        var closed = await PromptAsync(S, $$"""{"model":"tiny","messages":{{Prefill}},"add_generation_prompt":false}""");
        Assert.EndsWith("The answer is<|im_end|>\n", closed, StringComparison.Ordinal);
        var opened = await PromptAsync(S, $$"""{"model":"tiny","messages":{{Prefill}}}""");
        Assert.Equal(closed + "<|im_start|>assistant\n", opened);

        // The chat route builds the same prompt: its prompt_tokens are the tokens of the continued prompt (BOS added).
        var (status, chat, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", body);
        Assert.Equal(200, status);
        var expected = (await S.TokenizeAsync(prompt)).Length + 1;
        Assert.Equal(expected, chat!.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        var (_, plain, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", $$"""{"model":"tiny","messages":{{Prefill}},"max_tokens":1}""");
        Assert.NotEqual(expected, plain!.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Continue_final_message_with_add_generation_prompt_is_a_400()
    {
        var (status, body, _) = await Raw.PostAsync(S.Http, "v1/chat/completions",
            $$"""{"model":"tiny","messages":{{Prefill}},"continue_final_message":true,"add_generation_prompt":true}""");
        Assert.Equal(400, status);
        Raw.AssertError(body, "continue_final_message");
        var (kw, kwBody, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", $$$"""{"model":"tiny","messages":{{{Prefill}}},"chat_template_kwargs":{"messages":[]}}""");
        Assert.Equal(400, kw);
        Raw.AssertError(kwBody, "chat_template_kwargs");
        var (kwType, kwTypeBody, _) = await Raw.PostAsync(S.Http, "v1/chat/completions", $$"""{"model":"tiny","messages":{{Prefill}},"chat_template_kwargs":[1]}""");
        Assert.Equal(400, kwType);
        Raw.AssertError(kwTypeBody, "chat_template_kwargs");
    }

    [Fact]
    public async Task Chat_template_kwargs_from_the_server_and_the_request_reach_the_template()
    {
        var template = Path.Combine(RepoPaths.Templates, "Qwen-Qwen3-0.6B.jinja");
        await using var s = await RunningServer.StartAsync(["--chat-template-file", template, "--chat-template-kwargs", "{\"enable_thinking\":false}"]);
        const string messages = """[{"role":"user","content":"Hi"}]""";
        var serverDefault = await PromptAsync(s, $$"""{"model":"tiny","messages":{{messages}}}""");
        Assert.EndsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n", serverDefault, StringComparison.Ordinal);
        var overridden = await PromptAsync(s, $$$"""{"model":"tiny","messages":{{{messages}}},"chat_template_kwargs":{"enable_thinking":true}}""");
        Assert.EndsWith("<|im_start|>assistant\n", overridden, StringComparison.Ordinal);
        Assert.DoesNotContain("<think>", overridden, StringComparison.Ordinal);
    }
}
