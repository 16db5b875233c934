using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LlmServer.Templates;

/// <summary>What one chat request asks the template to render.</summary>
/// <param name="Messages">The conversation, as the template's <c>messages</c>.</param>
/// <param name="Tools">The request's tools; null or empty leaves <c>tools</c> undefined in the template.</param>
/// <param name="AddGenerationPrompt">Open an assistant turn after the messages (vLLM's default: true).</param>
/// <param name="ContinueFinalMessage">Leave the final message open so the model continues it (assistant prefill).</param>
/// <param name="BosToken">The vocabulary's BOS text, as <c>bos_token</c>.</param>
/// <param name="EosToken">The vocabulary's EOS text, as <c>eos_token</c>.</param>
/// <param name="Variables">Extra template variables (<c>chat_template_kwargs</c>), e.g. <c>enable_thinking</c>.</param>
internal sealed record ChatPromptInput(
    JsonArray Messages,
    JsonArray? Tools,
    bool AddGenerationPrompt,
    bool ContinueFinalMessage,
    string BosToken,
    string EosToken,
    JsonObject? Variables = null);

/// <summary>
/// A model's chat template together with what llama.cpp learns about it before the first request (whether it
/// accepts a system message), rendered the way the model's authors ran it: no <c>tools</c> variable when the
/// request has none (Llama 3.x and Mistral templates write tool instructions for any defined list, even an
/// empty one), a system message folded into the next turn for templates that refuse one, and transformers'
/// <c>continue_final_message</c>.
/// </summary>
internal sealed class ChatPrompt
{
    private const string ProbeSystem = "System message";

    public ChatPrompt(JinjaTemplate template)
    {
        Template = template;
        SupportsSystemRole = Probe(template);
    }

    public JinjaTemplate Template { get; }

    /// <summary>
    /// False when the template raises on a system message or drops its text (Gemma 2, Mistral 7B v0.1...).
    /// llama.cpp's test is the same: render a system and a user message and look for the system text.
    /// </summary>
    public bool SupportsSystemRole { get; }

    private static bool Probe(JinjaTemplate template)
    {
        var messages = new JsonArray(
            new JsonObject { ["role"] = "system", ["content"] = ProbeSystem },
            new JsonObject { ["role"] = "user", ["content"] = "User message" });
        try
        {
            return Render(template, new JsonObject { ["messages"] = messages, ["add_generation_prompt"] = false, ["bos_token"] = "", ["eos_token"] = "" }, null)
                .Contains(ProbeSystem, StringComparison.Ordinal);
        }
        catch (JinjaException)
        {
            return false;
        }
    }

    /// <summary>Renders the prompt; throws <see cref="JinjaException"/> when the template refuses the conversation.</summary>
    /// <remarks>The input's JSON is read straight into template values, and copied only when a system message is folded.</remarks>
    public string Render(ChatPromptInput input, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        var messages = input.Messages;
        if (!SupportsSystemRole && messages.Count > 0 && messages[0] is JsonObject first && (string?)first["role"] == "system")
        {
            messages = (JsonArray)messages.DeepClone();
            FoldSystemMessage(messages);
        }
        var context = new Dictionary<string, JinjaValue>(StringComparer.Ordinal);
        foreach (var (k, v) in input.Variables ?? [])
        {
            context[k] = JinjaValue.FromNode(v);
        }
        context["messages"] = JinjaValue.FromNode(messages);
        context["bos_token"] = new JinjaString(input.BosToken);
        context["eos_token"] = new JinjaString(input.EosToken);
        context["add_generation_prompt"] = JinjaBool.Of(input.AddGenerationPrompt && !input.ContinueFinalMessage);
        if (input.Tools is { Count: > 0 } tools)
        {
            context["tools"] = JinjaValue.FromNode(tools);
        }
        var text = Template.Render(context, time);
        return input.ContinueFinalMessage && messages.Count > 0 ? Continue(text, MessageText(messages[^1])) : text;
    }

    private static string Render(JinjaTemplate template, JsonObject context, TimeProvider? time)
    {
        using var doc = JsonDocument.Parse(context.ToJsonString());
        return template.Render(doc.RootElement, time);
    }

    /// <summary>llama.cpp's fold: the first message's text, a newline, then the next message's text.</summary>
    internal static void FoldSystemMessage(JsonArray messages)
    {
        if (messages.Count == 0 || messages[0] is not JsonObject first || (string?)first["role"] != "system")
        {
            return;
        }
        if (messages.Count > 1 && messages[1] is JsonObject next)
        {
            next["content"] = MessageText(first) + "\n" + MessageText(next);
        }
        messages.RemoveAt(0);
    }

    /// <summary>A message's text: its string content, or its text parts joined by newlines.</summary>
    private static string MessageText(JsonNode? message)
    {
        var content = message?["content"];
        return content switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonArray parts => string.Join("\n", parts.OfType<JsonObject>().Where(p => (string?)p["type"] == "text").Select(p => (string?)p["text"] ?? "")),
            _ => "",
        };
    }

    /// <summary>
    /// transformers' <c>continue_final_message</c>: cut the rendered text right after the final message's content,
    /// dropping the end-of-turn markup the template wrote after it (trailing whitespace the template trimmed stays trimmed).
    /// </summary>
    internal static string Continue(string rendered, string final)
    {
        var stripped = final.Trim();
        if (stripped.Length == 0)
        {
            return rendered;
        }
        var at = rendered.LastIndexOf(stripped, StringComparison.Ordinal);
        if (at < 0)
        {
            throw new JinjaException("continue_final_message is set but the final message does not appear in the rendered chat template");
        }
        var lstripped = final.TrimStart().Length;
        // The template kept the message exactly (no surrounding whitespace lost): cut after all of it.
        var end = at + lstripped <= rendered.Length && string.CompareOrdinal(rendered, at, final, 0, final.Length) == 0 && lstripped == final.Length
            ? at + lstripped
            : at + stripped.Length;
        return rendered[..end];
    }
}
