using System.Text;
using System.Text.Json.Nodes;
using KServe.Node.LlmServer.Generation;

namespace KServe.Node.LlmServer.Tests.Unit;

/// <summary>The reasoning split as vLLM's deepseek_r1 and qwen3 parsers make it, whole and streamed in pieces.</summary>
public sealed class ReasoningTests
{
    [Theory]
    [InlineData("abc</think>xyz", "abc", "xyz")]
    [InlineData("<think>abc</think>xyz", "abc", "xyz")]
    [InlineData("\n <think>abc</think>xyz", "abc", "xyz")]
    [InlineData("abc</think>", "abc", null)]
    [InlineData("</think>xyz", "", "xyz")]
    [InlineData("abc", "abc", null)]
    [InlineData("a</think>b</think>c", "a", "b</think>c")]
    [InlineData("x<think>y</think>z", "x<think>y", "z")]
    [InlineData("<thin", "<thin", null)]
    [InlineData("a</thi", "a</thi", null)]
    public void Split_takes_text_before_the_first_end_tag_as_reasoning(string output, string reasoning, string? content)
    {
        Assert.Equal((reasoning, content), Reasoning.Split(output));
    }

    public static TheoryData<string> Outputs() => new()
    {
        "<think>Let me think. 1 < 2, and </th is not a tag.</think>The answer is 42.",
        "Reasoning without an opening tag</think>\n\nAnswer <b>bold</b>",
        "  <think>\n</think>",
        "<<</think>>>",
        "never ends </thin",
        "<thinker>is not a tag</think>after",
    };

    [Theory]
    [MemberData(nameof(Outputs))]
    public void Every_way_of_cutting_the_stream_gives_the_whole_split(string output)
    {
        var whole = Reasoning.Split(output);
        // Every cut into two pieces, and one character at a time: tags split across tokens still split.
        var cuttings = Enumerable.Range(0, output.Length + 1).Select(i => new[] { output[..i], output[i..] })
            .Append(output.Select(c => c.ToString()).ToArray());
        foreach (var pieces in cuttings)
        {
            var splitter = new ReasoningSplitter();
            var reasoning = new StringBuilder();
            var content = new StringBuilder();
            foreach (var piece in pieces)
            {
                var (r, c) = splitter.Push(piece);
                Assert.False(content.Length > 0 && r.Length > 0, "reasoning after content");
                reasoning.Append(r);
                content.Append(c);
            }
            reasoning.Append(splitter.Finish());
            Assert.Equal(whole.Reasoning, reasoning.ToString());
            Assert.Equal(whole.Content ?? "", content.ToString());
        }
    }

    [Fact]
    public void A_partial_tag_that_does_not_complete_is_sent_as_reasoning()
    {
        var splitter = new ReasoningSplitter();
        Assert.Equal(("Step one", ""), splitter.Push("Step one</"));
        Assert.Equal(("", ""), splitter.Push("thi"));
        Assert.Equal(("</thiz", ""), splitter.Push("z"));
        Assert.Equal((" done", "answer"), splitter.Push(" done</think>answer"));
        Assert.True(splitter.Ended);
        Assert.Equal(("", " more"), splitter.Push(" more"));
    }

    [Fact]
    public void Auto_detects_the_format_from_the_template()
    {
        Assert.Equal(ReasoningFormat.Qwen3, Reasoning.Detect("<|im_start|>assistant\n{% if enable_thinking %}<think>\n{% endif %}"));
        Assert.Equal(ReasoningFormat.DeepSeekR1, Reasoning.Detect("{{ '<｜Assistant｜><think>\\n' }}"));
        Assert.Equal(ReasoningFormat.None, Reasoning.Detect("{{ '<|im_start|>assistant\\n' }}"));
        Assert.Equal(ReasoningFormat.None, Reasoning.Detect(null));
    }

    [Theory]
    [InlineData("deepseek_r1", "<|assistant|><think>\n", null, true)]
    [InlineData("deepseek_r1", "<|assistant|>", null, true)]
    [InlineData("deepseek_r1", "<|assistant|><think>\n\n</think>\n\n", null, false)]
    [InlineData("qwen3", "<|im_start|>assistant\n", null, true)]
    [InlineData("qwen3", "<|im_start|>assistant\n", false, false)]
    [InlineData("qwen3", "<|im_start|>assistant\n", true, true)]
    [InlineData("deepseek_r1", "<|assistant|><think>\n", false, true)]
    [InlineData("none", "<|assistant|><think>\n", null, false)]
    public void The_split_applies_unless_the_prompt_closed_the_block_or_qwen3_thinking_is_off(string format, string prompt, bool? enableThinking, bool applies)
    {
        var kwargs = enableThinking is { } on ? new JsonObject { ["enable_thinking"] = on } : null;
        Assert.Equal(applies, Reasoning.AppliesTo(Reasoning.Names[format], prompt, null, kwargs));
        // The server's --chat-template-kwargs count too, under the request's.
        Assert.Equal(applies, Reasoning.AppliesTo(Reasoning.Names[format], prompt, kwargs, null));
    }

    [Fact]
    public void Wrapping_a_grammar_renames_its_root_but_not_literals_or_classes()
    {
        const string grammar = "root ::= \"root\" obj\nobj ::= \"{\" root? [root] \"}\"\nroot-ish ::= \"x\"\n";
        var wrapped = Reasoning.WrapGrammar(grammar);
        Assert.Contains("answer-root ::= \"root\" obj\n", wrapped, StringComparison.Ordinal);
        Assert.Contains("obj ::= \"{\" answer-root? [root] \"}\"\n", wrapped, StringComparison.Ordinal);
        Assert.Contains("root-ish ::= \"x\"\n", wrapped, StringComparison.Ordinal);
        Assert.Contains("root ::= think-0 think-space answer-root\n", wrapped, StringComparison.Ordinal);
        Assert.Single(wrapped.Split('\n'), l => l.StartsWith("root ::=", StringComparison.Ordinal));
    }
}
