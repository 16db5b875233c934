using System.Text;
using KServe.Node.LlmServer.Api;

namespace KServe.Node.LlmServer.Serving;

/// <summary>Turns a choice's generated text into the assistant message: content, tool calls and finish reason.</summary>
internal static class ToolCallOutput
{
    /// <summary>Parses the calls; <paramref name="parallel"/> false keeps the first only, as vLLM does.</summary>
    public static (string? Content, ToolCall[]? Calls) Split(ToolCallFormat format, string text, bool parallel)
    {
        var parsed = ToolCallParser.Parse(format, text);
        if (parsed.Calls.Count == 0)
        {
            return (text, null);
        }
        var calls = parallel ? parsed.Calls : parsed.Calls.Take(1);
        return (parsed.Content, [.. calls.Select(c => new ToolCall(ToolCallParser.NewCallId(format), "function", new FunctionCall(c.Name, c.Arguments)))]);
    }
}

/// <summary>
/// Streams one choice's content while tool calls may follow: text that is, or may become, a call's start marker
/// is held back, and everything from the marker on is parsed once the choice ends, with the same parser as the
/// non-streaming answer so both agree. Leading whitespace is held until other text arrives, because a message
/// whose only content before its calls is whitespace has null content.
/// </summary>
internal sealed class ToolCallStreamer(ToolCallFormat format, bool parallel)
{
    private readonly StringBuilder _all = new();
    private string _pending = "";
    private int _emitted;
    private bool _sawText;
    private bool _inCalls;

    /// <summary>Adds generated text; returns the content that can be sent now (possibly empty).</summary>
    public string Push(string delta)
    {
        _all.Append(delta);
        if (_inCalls || delta.Length == 0)
        {
            return "";
        }
        _pending += delta;
        // A call may open the answer without its marker (Llama, Mistral): that counts only before any content.
        var start = ToolCallParser.FindStart(format, _pending);
        if (_sawText && start >= 0 && ToolCallParser.LeadingOpen(format) != '\0')
        {
            start = _pending.IndexOf(ToolCallParser.Marker(format), StringComparison.Ordinal);
        }
        string ready;
        if (start >= 0)
        {
            _inCalls = true;
            ready = _pending[..start];
            _pending = "";
        }
        else
        {
            var hold = ToolCallParser.PendingSuffix(format, _pending);
            ready = _pending[..^hold];
            _pending = _pending[^hold..];
        }
        if (!_sawText)
        {
            if (string.IsNullOrWhiteSpace(ready))
            {
                // Not sent yet: keep it in front of what comes next.
                _pending = _inCalls ? "" : ready + _pending;
                return "";
            }
            _sawText = true;
        }
        _emitted += ready.Length;
        return ready;
    }

    /// <summary>At the end of the choice: the content not yet sent, and the calls (null when there are none).</summary>
    public (string Content, ToolCall[]? Calls) Finish()
    {
        var text = _all.ToString();
        var (content, calls) = ToolCallOutput.Split(format, text, parallel);
        if (calls is null)
        {
            return (text[_emitted..], null);
        }
        return (content is null || content.Length <= _emitted ? "" : content[_emitted..], calls);
    }
}
