using System.Text.Json.Nodes;
using KServe.Node.LlmServer.Templates;

namespace KServe.Node.LlmServer.Tests.Templates;

/// <summary>The template's inputs as the model was trained with them: tools, system role, kwargs, prefill.</summary>
public sealed class ChatPromptTests
{
    private static ChatPrompt Load(string name) => new(JinjaTemplate.Parse(File.ReadAllText(Path.Combine(RepoPaths.Templates, name + ".jinja"))));

    private static JsonArray Conversation(string? system = "You are a helpful assistant.") =>
        system is null
            ? [new JsonObject { ["role"] = "user", ["content"] = "Hello there!" }]
            : [new JsonObject { ["role"] = "system", ["content"] = system }, new JsonObject { ["role"] = "user", ["content"] = "Hello there!" }];

    private static ChatPromptInput Input(JsonArray messages, JsonArray? tools = null, bool addGenerationPrompt = true, bool continueFinal = false, JsonObject? variables = null) =>
        new(messages, tools, addGenerationPrompt, continueFinal, "<s>", "</s>", variables);

    [Theory]
    [InlineData("meta-llama-Llama-3.1-8B-Instruct", "Environment: ipython")]
    [InlineData("meta-llama-Llama-3.3-70B-Instruct", "Environment: ipython")]
    [InlineData("meta-llama-Llama-3.2-3B-Instruct", "Environment: ipython")]
    [InlineData("mistralai-Mistral-Nemo-Instruct-2407", "[AVAILABLE_TOOLS]")]
    public void A_chat_without_tools_gets_no_tool_instructions(string template, string toolMarker)
    {
        var prompt = Load(template);
        Assert.DoesNotContain(toolMarker, prompt.Render(Input(Conversation())), StringComparison.Ordinal);
        Assert.DoesNotContain(toolMarker, prompt.Render(Input(Conversation(), tools: [])), StringComparison.Ordinal);
        var weather = JsonNode.Parse("""{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}""")!;
        Assert.Contains(toolMarker, prompt.Render(Input(Conversation(), tools: [weather])), StringComparison.Ordinal);
    }

    [Fact]
    public void A_template_that_refuses_a_system_role_gets_it_folded_into_the_first_user_turn()
    {
        var gemma = Load("google-gemma-2-2b-it");
        Assert.False(gemma.SupportsSystemRole);
        var text = gemma.Render(Input(Conversation("Be brief.")));
        Assert.Equal("<s><start_of_turn>user\nBe brief.\nHello there!<end_of_turn>\n<start_of_turn>model\n", text);
        Assert.True(Load("Qwen-Qwen2.5-7B-Instruct").SupportsSystemRole);
    }

    [Fact]
    public void Chat_template_kwargs_reach_the_template()
    {
        var qwen3 = Load("Qwen-Qwen3-0.6B");
        var thinking = qwen3.Render(Input(Conversation()));
        var notThinking = qwen3.Render(Input(Conversation(), variables: new JsonObject { ["enable_thinking"] = false }));
        Assert.EndsWith("<|im_start|>assistant\n", thinking, StringComparison.Ordinal);
        Assert.EndsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n", notThinking, StringComparison.Ordinal);
    }

    [Fact]
    public void Add_generation_prompt_false_leaves_the_assistant_turn_unopened()
    {
        var qwen = Load("Qwen-Qwen2.5-7B-Instruct");
        var closed = qwen.Render(Input(Conversation(), addGenerationPrompt: false));
        Assert.EndsWith("Hello there!<|im_end|>\n", closed, StringComparison.Ordinal);
        Assert.Equal(closed + "<|im_start|>assistant\n", qwen.Render(Input(Conversation())));
    }

    [Fact]
    public void Continue_final_message_cuts_after_the_final_content_as_transformers_does()
    {
        var qwen = Load("Qwen-Qwen2.5-7B-Instruct");
        var messages = Conversation();
        messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = "The answer is" });
        var text = qwen.Render(Input(messages, addGenerationPrompt: false, continueFinal: true));
        Assert.EndsWith("Hello there!<|im_end|>\n<|im_start|>assistant\nThe answer is", text, StringComparison.Ordinal);
        // Trailing whitespace the template trims stays trimmed; leading whitespace in the message is kept out.
        Assert.Equal("x<|im_start|>assistant\nThe answer is", ChatPrompt.Continue("x<|im_start|>assistant\nThe answer is<|im_end|>\n", "The answer is "));
        Assert.Throws<JinjaException>(() => ChatPrompt.Continue("nothing here", "absent"));
    }
}
