using System.Text;
using System.Text.Json.Nodes;

namespace KServe.Node.LlmServer.Generation;

/// <summary>vLLM's <c>--reasoning-parser</c> formats that this server reads.</summary>
internal enum ReasoningFormat
{
    /// <summary>No parsing: <c>&lt;think&gt;</c> blocks stay in the content.</summary>
    None,

    /// <summary>DeepSeek R1: the template opens <c>&lt;think&gt;</c> in the prompt; text before <c>&lt;/think&gt;</c> is reasoning, all of it when the tag never comes.</summary>
    DeepSeekR1,

    /// <summary>Qwen3: as DeepSeek R1, but with <c>enable_thinking: false</c> the output is content.</summary>
    Qwen3,
}

/// <summary>
/// Splits <c>&lt;think&gt;…&lt;/think&gt;</c> reasoning from the answer as vLLM's <c>deepseek_r1</c> and <c>qwen3</c>
/// reasoning parsers do: generation starts inside the reasoning (the chat template opened it in the prompt), a
/// <c>&lt;think&gt;</c> that opens the output is dropped, everything before the first <c>&lt;/think&gt;</c> is
/// reasoning and everything after it is content. A prompt whose last think tag is a closing one (the template
/// closed the block, as Qwen3's does for <c>enable_thinking: false</c>) turns the parser off, as vLLM's
/// <c>prompt_is_reasoning_end</c> does.
/// </summary>
internal static class Reasoning
{
    public const string Start = "<think>";
    public const string End = "</think>";

    public static readonly IReadOnlyDictionary<string, ReasoningFormat> Names = new Dictionary<string, ReasoningFormat>(StringComparer.Ordinal)
    {
        ["none"] = ReasoningFormat.None,
        ["deepseek_r1"] = ReasoningFormat.DeepSeekR1,
        ["qwen3"] = ReasoningFormat.Qwen3,
    };

    public static string Name(ReasoningFormat format) => Names.First(n => n.Value == format).Key;

    /// <summary>
    /// <c>--reasoning-parser auto</c>: a template that writes <c>&lt;think&gt;</c> belongs to a reasoning model;
    /// ChatML ones are Qwen3's family, the others read as DeepSeek R1.
    /// </summary>
    public static ReasoningFormat Detect(string? template) =>
        template is null || !template.Contains(Start, StringComparison.Ordinal) ? ReasoningFormat.None
        : template.Contains("<|im_start|>", StringComparison.Ordinal) ? ReasoningFormat.Qwen3
        : ReasoningFormat.DeepSeekR1;

    /// <summary>Whether this request's output is split: the server's format, the prompt, and the template variables.</summary>
    public static bool AppliesTo(ReasoningFormat format, string prompt, JsonObject? serverKwargs, JsonObject? requestKwargs)
    {
        if (format == ReasoningFormat.None || PromptEndsReasoning(prompt))
        {
            return false;
        }
        // Qwen3's switch: thinking off means the answer is content, whatever the template did with the prompt.
        var enableThinking = requestKwargs?["enable_thinking"] ?? serverKwargs?["enable_thinking"];
        return !(format == ReasoningFormat.Qwen3 && enableThinking is JsonValue v && v.TryGetValue<bool>(out var on) && !on);
    }

    /// <summary>vLLM's <c>prompt_is_reasoning_end</c>: the prompt's last think tag closes the block.</summary>
    public static bool PromptEndsReasoning(string prompt) =>
        prompt.LastIndexOf(End, StringComparison.Ordinal) is var end and >= 0 && end > prompt.LastIndexOf(Start, StringComparison.Ordinal);

    /// <summary>The whole output split at once: reasoning (possibly empty) and content (null when empty), as the stream splits it.</summary>
    public static (string Reasoning, string? Content) Split(string text)
    {
        var splitter = new ReasoningSplitter();
        var (reasoning, content) = splitter.Push(text);
        var rest = splitter.Finish();
        var all = reasoning + rest;
        return (all, content.Length > 0 ? content : null);
    }

    /// <summary>The GBNF rules of any text up to and including the first <c>&lt;/think&gt;</c> (a matcher of the tag, state by state), then a little whitespace.</summary>
    /// <remarks>
    /// Structured output and forced tool calls constrain the answer, not the reasoning before it, as vLLM enables
    /// the grammar only once reasoning ended. The reasoning cannot end with end-of-generation inside the grammar:
    /// a choice cut by max_tokens while it thinks is all reasoning, as without a grammar.
    /// </remarks>
    public static string PrefixGrammar(string contentRule)
    {
        var sb = new StringBuilder();
        sb.Append("root ::= think-0 think-space ").Append(contentRule).Append('\n');
        sb.Append("think-space ::= [ \\t\\r\\n]{0,4}\n");
        sb.Append("think-0 ::= [^<] think-0 | \"<\" think-1\n");
        for (var k = 1; k < End.Length; k++)
        {
            var c = End[k];
            var next = k + 1 < End.Length ? $" think-{k + 1}" : "";
            sb.Append($"think-{k} ::= \"{c}\"{next} | \"<\" think-1 | [^{c}<] think-0\n");
        }
        return sb.ToString();
    }

    /// <summary>A grammar that lets the reasoning run first and then constrains the rest with <paramref name="grammar"/>.</summary>
    public static string WrapGrammar(string grammar) => RenameRule(grammar, "root", "answer-root") + PrefixGrammar("answer-root");

    /// <summary>Renames a GBNF rule, its definition and its uses, leaving string literals and character classes alone.</summary>
    internal static string RenameRule(string grammar, string from, string to)
    {
        var sb = new StringBuilder(grammar.Length + 32);
        var i = 0;
        while (i < grammar.Length)
        {
            var c = grammar[i];
            if (c is '"' or '[')
            {
                var close = c == '"' ? '"' : ']';
                var j = i + 1;
                while (j < grammar.Length && grammar[j] != close)
                {
                    j += grammar[j] == '\\' ? 2 : 1;
                }
                j = Math.Min(j + 1, grammar.Length);
                sb.Append(grammar, i, j - i);
                i = j;
            }
            else if (IsNameChar(c))
            {
                var j = i;
                while (j < grammar.Length && IsNameChar(grammar[j]))
                {
                    j++;
                }
                var name = grammar[i..j];
                sb.Append(name == from ? to : name);
                i = j;
            }
            else
            {
                sb.Append(c);
                i++;
            }
        }
        return sb.ToString();
    }

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';
}

/// <summary>
/// Splits one choice's streamed text into reasoning and content. Text that may be the start of a tag is held
/// back until the next piece decides it, so a tag split across tokens is still found.
/// </summary>
internal sealed class ReasoningSplitter
{
    private readonly StringBuilder _pending = new();
    private bool _opened;
    private bool _ended;

    /// <summary>Whether <c>&lt;/think&gt;</c> was seen: everything after it is content.</summary>
    public bool Ended => _ended;

    /// <summary>Adds generated text; returns what can be sent now as reasoning and as content (either may be empty).</summary>
    public (string Reasoning, string Content) Push(string delta)
    {
        if (_ended)
        {
            return ("", delta);
        }
        _pending.Append(delta);
        var text = _pending.ToString();
        if (!_opened)
        {
            // A <think> that opens the output (templates that leave it to the model) is not reasoning text.
            var trimmed = text.TrimStart();
            if (trimmed.StartsWith(Reasoning.Start, StringComparison.Ordinal))
            {
                text = trimmed[Reasoning.Start.Length..];
                _opened = true;
            }
            else if (Reasoning.Start.StartsWith(trimmed, StringComparison.Ordinal))
            {
                return ("", "");
            }
            else
            {
                _opened = true;
            }
        }
        _pending.Clear();
        var end = text.IndexOf(Reasoning.End, StringComparison.Ordinal);
        if (end >= 0)
        {
            _ended = true;
            return (text[..end], text[(end + Reasoning.End.Length)..]);
        }
        var hold = PartialTagLength(text);
        _pending.Append(text, text.Length - hold, hold);
        return (text[..^hold], "");
    }

    /// <summary>At the end of the choice: the held-back text, which is reasoning (no closing tag followed it).</summary>
    public string Finish()
    {
        var rest = _pending.ToString();
        _pending.Clear();
        return rest;
    }

    /// <summary>The length of the longest end of <paramref name="text"/> that begins <c>&lt;/think&gt;</c>.</summary>
    private static int PartialTagLength(string text)
    {
        for (var n = Math.Min(Reasoning.End.Length - 1, text.Length); n > 0; n--)
        {
            if (string.CompareOrdinal(text, text.Length - n, Reasoning.End, 0, n) == 0)
            {
                return n;
            }
        }
        return 0;
    }
}
