using System.Text;
using System.Text.RegularExpressions;

namespace KServe.Node.LlmServer.Templates;

internal enum TokenKind
{
    Text,
    Number,
    String,
    Identifier,
    Equals,
    OpenParen,
    CloseParen,
    OpenStatement,
    CloseStatement,
    OpenExpression,
    CloseExpression,
    OpenSquare,
    CloseSquare,
    OpenCurly,
    CloseCurly,
    Comma,
    Dot,
    Colon,
    Pipe,
    Additive,
    Multiplicative,
    Power,
    Comparison,
    Unary,
    Comment,
}

internal readonly record struct Token(TokenKind Kind, string Value);

/// <summary>
/// Splits a chat template into tokens. Chat templates are written for the Hugging Face convention
/// (<c>trim_blocks</c> and <c>lstrip_blocks</c> on, one trailing newline dropped), which this lexer
/// applies before tokenizing, exactly as transformers and the Hub's JavaScript renderer do.
/// </summary>
internal static partial class JinjaLexer
{
    private static readonly (string Text, TokenKind Kind)[] Symbols =
    [
        ("{%", TokenKind.OpenStatement), ("%}", TokenKind.CloseStatement),
        ("{{", TokenKind.OpenExpression), ("}}", TokenKind.CloseExpression),
        ("(", TokenKind.OpenParen), (")", TokenKind.CloseParen),
        ("{", TokenKind.OpenCurly), ("}", TokenKind.CloseCurly),
        ("[", TokenKind.OpenSquare), ("]", TokenKind.CloseSquare),
        (",", TokenKind.Comma), (".", TokenKind.Dot), (":", TokenKind.Colon), ("|", TokenKind.Pipe),
        ("<=", TokenKind.Comparison), (">=", TokenKind.Comparison), ("==", TokenKind.Comparison),
        ("!=", TokenKind.Comparison), ("<", TokenKind.Comparison), (">", TokenKind.Comparison),
        ("+", TokenKind.Additive), ("-", TokenKind.Additive), ("~", TokenKind.Additive),
        ("**", TokenKind.Power),
        ("*", TokenKind.Multiplicative), ("//", TokenKind.Multiplicative), ("/", TokenKind.Multiplicative),
        ("%", TokenKind.Multiplicative),
        ("=", TokenKind.Equals),
    ];

    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdefABCDEF");

    [GeneratedRegex(@"(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)", RegexOptions.Singleline)]
    private static partial Regex GenerationTag();

    internal static string Preprocess(string template)
    {
        if (template.EndsWith('\n'))
        {
            template = template[..^1];
        }
        // lstrip_blocks: spaces and tabs before a block or comment tag at the start of a line go.
        var sb = new StringBuilder(template.Length);
        var lineStart = true;
        for (var i = 0; i < template.Length;)
        {
            if (lineStart)
            {
                var j = i;
                while (j < template.Length && (template[j] == ' ' || template[j] == '\t'))
                {
                    j++;
                }
                if (j + 1 < template.Length && template[j] == '{' && template[j + 1] is '#' or '%' or '-')
                {
                    i = j;
                }
                lineStart = false;
                continue;
            }
            var c = template[i++];
            sb.Append(c);
            lineStart = c is '\n' or '\r' or '\u2028' or '\u2029';
        }
        // trim_blocks: the first newline after a block or comment tag goes.
        var stripped = sb.ToString();
        sb.Clear();
        for (var i = 0; i < stripped.Length; i++)
        {
            sb.Append(stripped[i]);
            if (stripped[i] == '}' && i > 0 && stripped[i - 1] is '#' or '%' or '-' && i + 1 < stripped.Length && stripped[i + 1] == '\n')
            {
                i++;
            }
        }
        return GenerationTag().Replace(sb.ToString(), m =>
            (m.Groups[2].Length > 0 ? "" : m.Groups[1].Value) + (m.Groups[3].Length > 0 ? "" : m.Groups[4].Value));
    }

    internal static bool IsSpace(char c) => c switch
    {
        ' ' or '\t' or '\n' or '\v' or '\f' or '\r' or '\u00a0' or '\u1680' or '\u2028' or '\u2029' or '\u202f'
            or '\u205f' or '\u3000' or '\ufeff' => true,
        >= '\u2000' and <= '\u200a' => true,
        _ => false,
    };

    internal static bool IsWordChar(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_';

    private static bool IsDigit(char c) => c is >= '0' and <= '9';

    public static List<Token> Tokenize(string source)
    {
        var src = Preprocess(source);
        var tokens = new List<Token>();
        var pos = 0;
        var curlyDepth = 0;

        char At(int i) => i < src.Length ? src[i] : '\0';

        string ConsumeWhile(Func<char, bool> predicate)
        {
            var sb = new StringBuilder();
            while (pos < src.Length && predicate(src[pos]))
            {
                if (src[pos] == '\\')
                {
                    pos++;
                    if (pos >= src.Length)
                    {
                        throw new JinjaException("Unexpected end of input");
                    }
                    var escaped = src[pos++];
                    if (escaped is 'x' or 'u')
                    {
                        var length = escaped == 'x' ? 2 : 4;
                        if (pos + length > src.Length || src.AsSpan(pos, length).ContainsAnyExcept(HexDigits))
                        {
                            throw new JinjaException($"Invalid hexadecimal escape sequence: \\{escaped}");
                        }
                        sb.Append((char)Convert.ToInt32(src.Substring(pos, length), 16));
                        pos += length;
                        continue;
                    }
                    sb.Append(escaped switch
                    {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\b',
                        'f' => '\f',
                        'v' => '\v',
                        '\'' => '\'',
                        '"' => '"',
                        '\\' => '\\',
                        _ => throw new JinjaException($"Unexpected escaped character: {escaped}"),
                    });
                    continue;
                }
                sb.Append(src[pos++]);
                if (pos >= src.Length)
                {
                    throw new JinjaException("Unexpected end of input");
                }
            }
            return sb.ToString();
        }

        void StripTrailingWhitespace()
        {
            if (tokens.Count > 0 && tokens[^1].Kind == TokenKind.Text)
            {
                var trimmed = tokens[^1].Value;
                var end = trimmed.Length;
                while (end > 0 && IsSpace(trimmed[end - 1]))
                {
                    end--;
                }
                if (end == 0)
                {
                    tokens.RemoveAt(tokens.Count - 1);
                }
                else
                {
                    tokens[^1] = new Token(TokenKind.Text, trimmed[..end]);
                }
            }
        }

        void SkipLeadingWhitespace()
        {
            while (pos < src.Length && IsSpace(src[pos]))
            {
                pos++;
            }
        }

        while (pos < src.Length)
        {
            var lastKind = tokens.Count == 0 ? (TokenKind?)null : tokens[^1].Kind;
            if (lastKind is null or TokenKind.CloseStatement or TokenKind.CloseExpression or TokenKind.Comment)
            {
                var start = pos;
                while (pos < src.Length && !(src[pos] == '{' && At(pos + 1) is '%' or '{' or '#'))
                {
                    pos++;
                }
                if (pos > start)
                {
                    tokens.Add(new Token(TokenKind.Text, src[start..pos]));
                    continue;
                }
            }

            if (src[pos] == '{' && At(pos + 1) == '#')
            {
                pos += 2;
                var stripBefore = At(pos) == '-';
                if (stripBefore)
                {
                    pos++;
                }
                var start = pos;
                while (At(pos) != '#' || At(pos + 1) != '}')
                {
                    if (pos + 2 >= src.Length)
                    {
                        throw new JinjaException("Missing end of comment tag");
                    }
                    pos++;
                }
                var comment = src[start..pos];
                var stripAfter = comment.EndsWith('-');
                if (stripAfter)
                {
                    comment = comment[..^1];
                }
                if (stripBefore)
                {
                    StripTrailingWhitespace();
                }
                tokens.Add(new Token(TokenKind.Comment, comment));
                pos += 2;
                if (stripAfter)
                {
                    SkipLeadingWhitespace();
                }
                continue;
            }
            if (string.CompareOrdinal(src, pos, "{%-", 0, 3) == 0)
            {
                StripTrailingWhitespace();
                tokens.Add(new Token(TokenKind.OpenStatement, "{%"));
                pos += 3;
                continue;
            }
            if (string.CompareOrdinal(src, pos, "{{-", 0, 3) == 0)
            {
                StripTrailingWhitespace();
                tokens.Add(new Token(TokenKind.OpenExpression, "{{"));
                curlyDepth = 0;
                pos += 3;
                continue;
            }
            ConsumeWhile(IsSpace);
            if (string.CompareOrdinal(src, pos, "-%}", 0, 3) == 0)
            {
                tokens.Add(new Token(TokenKind.CloseStatement, "%}"));
                pos += 3;
                SkipLeadingWhitespace();
                continue;
            }
            if (string.CompareOrdinal(src, pos, "-}}", 0, 3) == 0)
            {
                tokens.Add(new Token(TokenKind.CloseExpression, "}}"));
                pos += 3;
                SkipLeadingWhitespace();
                continue;
            }
            if (pos >= src.Length)
            {
                break;
            }
            var ch = src[pos];
            if (ch is '-' or '+')
            {
                var prev = tokens.Count == 0 ? (TokenKind?)null : tokens[^1].Kind;
                if (prev is null or TokenKind.Text)
                {
                    throw new JinjaException($"Unexpected character: {ch}");
                }
                if (prev is not (TokenKind.Identifier or TokenKind.Number or TokenKind.String or TokenKind.CloseParen or TokenKind.CloseSquare))
                {
                    pos++;
                    var num = ConsumeWhile(IsDigit);
                    if (num.Length > 0 && At(pos) == '.' && IsDigit(At(pos + 1)))
                    {
                        pos++;
                        num = num + "." + ConsumeWhile(IsDigit);
                    }
                    tokens.Add(new Token(num.Length > 0 ? TokenKind.Number : TokenKind.Unary, ch + num));
                    continue;
                }
            }
            var matched = false;
            foreach (var (text, kind) in Symbols)
            {
                if (text == "}}" && curlyDepth > 0)
                {
                    continue;
                }
                if (string.CompareOrdinal(src, pos, text, 0, text.Length) == 0 && pos + text.Length <= src.Length)
                {
                    tokens.Add(new Token(kind, text));
                    if (kind == TokenKind.OpenExpression)
                    {
                        curlyDepth = 0;
                    }
                    else if (kind == TokenKind.OpenCurly)
                    {
                        curlyDepth++;
                    }
                    else if (kind == TokenKind.CloseCurly)
                    {
                        curlyDepth--;
                    }
                    pos += text.Length;
                    matched = true;
                    break;
                }
            }
            if (matched)
            {
                continue;
            }
            if (ch is '\'' or '"')
            {
                pos++;
                var str = ConsumeWhile(c => c != ch);
                tokens.Add(new Token(TokenKind.String, str));
                pos++;
                continue;
            }
            if (IsDigit(ch))
            {
                var num = ConsumeWhile(IsDigit);
                if ((tokens.Count == 0 || tokens[^1].Kind != TokenKind.Dot) && At(pos) == '.' && IsDigit(At(pos + 1)))
                {
                    pos++;
                    num = num + "." + ConsumeWhile(IsDigit);
                }
                tokens.Add(new Token(TokenKind.Number, num));
                continue;
            }
            if (IsWordChar(ch))
            {
                tokens.Add(new Token(TokenKind.Identifier, ConsumeWhile(IsWordChar)));
                continue;
            }
            throw new JinjaException($"Unexpected character: {ch}");
        }
        return tokens;
    }
}

/// <summary>A template that cannot be parsed or rendered (including <c>raise_exception</c> from the template).</summary>
public sealed class JinjaException : Exception
{
    public JinjaException(string message) : base(message) { }
    public JinjaException() { }
    public JinjaException(string message, Exception inner) : base(message, inner) { }
}
