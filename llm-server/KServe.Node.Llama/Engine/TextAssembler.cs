using System.Text;

namespace KServe.Node.Llama.Engine;

/// <summary>
/// Turns token pieces (bytes) into releasable text: completes UTF-8 characters split across tokens, finds stop
/// strings across token boundaries, and holds back any tail that could still become a stop string so that no
/// part of a stop string ever reaches the stream.
/// </summary>
internal sealed class TextAssembler
{
    private readonly string[] _stops;
    private readonly int _maxStop;
    private readonly byte[] _utf8 = new byte[8];
    private int _utf8Len;
    private readonly StringBuilder _held = new();

    public TextAssembler(IReadOnlyList<string>? stops)
    {
        _stops = stops?.Where(s => !string.IsNullOrEmpty(s)).ToArray() ?? [];
        _maxStop = _stops.Length == 0 ? 0 : _stops.Max(s => s.Length);
    }

    /// <summary>Adds a token's bytes; returns the text now final, and the stop string when one completed (generation ends).</summary>
    public (string Release, string? Stop) Push(ReadOnlySpan<byte> piece)
    {
        AppendUtf8(piece);
        if (_stops.Length == 0)
        {
            var all = _held.ToString();
            _held.Clear();
            return (all, null);
        }

        var text = _held.ToString();
        var best = -1;
        string? hit = null;
        foreach (var s in _stops)
        {
            var i = text.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (best < 0 || i < best))
            {
                best = i;
                hit = s;
            }
        }

        if (hit != null)
        {
            _held.Clear();
            _utf8Len = 0;
            return (text[..best], hit);
        }

        var keep = HoldBack(text);
        _held.Clear().Append(text, text.Length - keep, keep);
        return (text[..^keep], null);
    }

    /// <summary>Releases whatever is held (generation ended without a stop string); an incomplete character becomes U+FFFD.</summary>
    public string Flush()
    {
        if (_utf8Len > 0)
        {
            _held.Append('\uFFFD');
            _utf8Len = 0;
        }

        var s = _held.ToString();
        _held.Clear();
        return s;
    }

    // Longest suffix of text that is a proper prefix of some stop string.
    private int HoldBack(string text)
    {
        for (var k = Math.Min(text.Length, _maxStop - 1); k > 0; k--)
        {
            var tail = text.AsSpan(text.Length - k);
            foreach (var s in _stops)
            {
                if (s.Length > k && s.AsSpan(0, k).SequenceEqual(tail))
                {
                    return k;
                }
            }
        }

        return 0;
    }

    private void AppendUtf8(ReadOnlySpan<byte> piece)
    {
        foreach (var b in piece)
        {
            if (_utf8Len == 0)
            {
                if (b < 0x80)
                {
                    _held.Append((char)b);
                    continue;
                }

                _utf8[_utf8Len++] = b;
            }
            else if ((b & 0xC0) == 0x80)
            {
                _utf8[_utf8Len++] = b;
            }
            else
            {
                // A new lead byte before the previous character completed: the old bytes were invalid.
                _held.Append('\uFFFD');
                _utf8Len = 0;
                if (b < 0x80)
                {
                    _held.Append((char)b);
                    continue;
                }

                _utf8[_utf8Len++] = b;
            }

            var need = _utf8[0] switch
            {
                >= 0xF0 => 4,
                >= 0xE0 => 3,
                >= 0xC0 => 2,
                _ => 1,
            };
            if (_utf8Len >= need)
            {
                _held.Append(Encoding.UTF8.GetString(_utf8, 0, _utf8Len));
                _utf8Len = 0;
            }
        }
    }
}
