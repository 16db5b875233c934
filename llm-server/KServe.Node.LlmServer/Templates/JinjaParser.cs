using System.Globalization;

namespace KServe.Node.LlmServer.Templates;

internal abstract record Node;

internal sealed record TextNode(string Text) : Node;
internal sealed record CommentNode : Node;
internal sealed record IfNode(Node Test, List<Node> Body, List<Node> Alternate) : Node;
internal sealed record ForNode(Node LoopVar, Node Iterable, List<Node> Body, List<Node> Else) : Node;
internal sealed record BreakNode : Node;
internal sealed record ContinueNode : Node;
internal sealed record SetNode(Node Target, Node? Value, List<Node> Body) : Node;
internal sealed record MacroNode(string Name, List<Node> Parameters, List<Node> Body) : Node;
internal sealed record CallBlockNode(CallNode Call, List<Node>? CallerParameters, List<Node> Body) : Node;
internal sealed record FilterBlockNode(Node Filter, List<Node> Body) : Node;

internal sealed record IdentifierNode(string Name) : Node;
internal sealed record IntegerNode(double Value) : Node;
internal sealed record FloatNode(double Value) : Node;
internal sealed record StringNode(string Value) : Node;
internal sealed record ArrayNode(List<Node> Items) : Node;
internal sealed record TupleNode(List<Node> Items) : Node;
internal sealed record ObjectNode(List<KeyValuePair<Node, Node>> Entries) : Node;
internal sealed record MemberNode(Node Target, Node Property, bool Computed) : Node;
internal sealed record CallNode(Node Callee, List<Node> Args) : Node;
internal sealed record BinaryNode(string Operator, Node Left, Node Right) : Node;
internal sealed record UnaryNode(string Operator, Node Operand) : Node;
internal sealed record FilterNode(Node Operand, Node Filter) : Node;
internal sealed record TestNode(Node Operand, bool Negate, string Test) : Node;
internal sealed record SelectNode(Node Value, Node Test) : Node;
internal sealed record TernaryNode(Node Condition, Node IfTrue, Node IfFalse) : Node;
internal sealed record SliceNode(Node? Start, Node? Stop, Node? Step) : Node;
internal sealed record KeywordArgNode(string Key, Node Value) : Node;
internal sealed record SpreadNode(Node Value) : Node;
internal sealed record KeywordSpreadNode(Node Value) : Node;

/// <summary>Recursive-descent parser with the operator precedence of the Hub's chat-template renderer.</summary>
internal sealed class JinjaParser
{
    private readonly List<Token> _tokens;
    private int _pos;

    private JinjaParser(List<Token> tokens) => _tokens = tokens;

    public static List<Node> Parse(List<Token> tokens)
    {
        var parser = new JinjaParser(tokens);
        var program = new List<Node>();
        while (parser._pos < tokens.Count)
        {
            program.Add(parser.ParseAny());
        }
        return program;
    }

    private Token Current => _pos < _tokens.Count ? _tokens[_pos] : throw new JinjaException("Unexpected end of template");

    private Token Expect(TokenKind kind, string error)
    {
        if (_pos >= _tokens.Count || _tokens[_pos].Kind != kind)
        {
            throw new JinjaException($"Parser Error: {error}.");
        }
        return _tokens[_pos++];
    }

    private bool Is(params TokenKind[] kinds)
    {
        if (_pos + kinds.Length > _tokens.Count)
        {
            return false;
        }
        for (var i = 0; i < kinds.Length; i++)
        {
            if (_tokens[_pos + i].Kind != kinds[i])
            {
                return false;
            }
        }
        return true;
    }

    private bool IsIdentifier(params string[] names)
    {
        if (_pos + names.Length > _tokens.Count)
        {
            return false;
        }
        for (var i = 0; i < names.Length; i++)
        {
            var t = _tokens[_pos + i];
            if (t.Kind != TokenKind.Identifier || t.Value != names[i])
            {
                return false;
            }
        }
        return true;
    }

    private bool IsStatement(params string[] names) =>
        _pos + 1 < _tokens.Count && _tokens[_pos].Kind == TokenKind.OpenStatement
        && _tokens[_pos + 1].Kind == TokenKind.Identifier && names.Contains(_tokens[_pos + 1].Value);

    private void ExpectIdentifier(string name)
    {
        if (!IsIdentifier(name))
        {
            throw new JinjaException($"Expected {name}");
        }
        _pos++;
    }

    private List<Node> ParseUntil(params string[] names)
    {
        var body = new List<Node>();
        while (!IsStatement(names))
        {
            if (_pos >= _tokens.Count)
            {
                throw new JinjaException($"Unexpected end of template: expected {{% {names[0]} %}}");
            }
            body.Add(ParseAny());
        }
        return body;
    }

    private Node ParseAny()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Comment:
                _pos++;
                return new CommentNode();
            case TokenKind.Text:
                _pos++;
                return new TextNode(token.Value);
            case TokenKind.OpenStatement:
                return ParseStatement();
            case TokenKind.OpenExpression:
                _pos++;
                var expr = ParseExpression();
                Expect(TokenKind.CloseExpression, "Expected closing expression token");
                return expr;
            default:
                throw new JinjaException($"Unexpected token type: {token.Kind}");
        }
    }

    private Node ParseStatement()
    {
        Expect(TokenKind.OpenStatement, "Expected opening statement token");
        if (Current.Kind != TokenKind.Identifier)
        {
            throw new JinjaException($"Unknown statement, got {Current.Kind}");
        }
        var name = Current.Value;
        Node result;
        switch (name)
        {
            case "set":
                _pos++;
                result = ParseSet();
                break;
            case "if":
                _pos++;
                result = ParseIf();
                Expect(TokenKind.OpenStatement, "Expected {% token");
                ExpectIdentifier("endif");
                Expect(TokenKind.CloseStatement, "Expected %} token");
                break;
            case "macro":
                {
                    _pos++;
                    var nameNode = ParsePrimary() as IdentifierNode ?? throw new JinjaException("Expected identifier following macro statement");
                    var parameters = ParseArgs(parameters: true);
                    Expect(TokenKind.CloseStatement, "Expected closing statement token");
                    var body = ParseUntil("endmacro");
                    result = new MacroNode(nameNode.Name, parameters, body);
                    Expect(TokenKind.OpenStatement, "Expected {% token");
                    ExpectIdentifier("endmacro");
                    Expect(TokenKind.CloseStatement, "Expected %} token");
                    break;
                }
            case "for":
                _pos++;
                result = ParseFor();
                Expect(TokenKind.OpenStatement, "Expected {% token");
                ExpectIdentifier("endfor");
                Expect(TokenKind.CloseStatement, "Expected %} token");
                break;
            case "call":
                {
                    _pos++;
                    List<Node>? callerArgs = null;
                    if (Is(TokenKind.OpenParen))
                    {
                        callerArgs = ParseArgs(parameters: true);
                    }
                    var callee = ParsePrimary() as IdentifierNode ?? throw new JinjaException("Expected identifier following call statement");
                    var callArgs = ParseArgs(parameters: false);
                    Expect(TokenKind.CloseStatement, "Expected closing statement token");
                    var body = ParseUntil("endcall");
                    Expect(TokenKind.OpenStatement, "Expected '{%'");
                    ExpectIdentifier("endcall");
                    Expect(TokenKind.CloseStatement, "Expected closing statement token");
                    result = new CallBlockNode(new CallNode(callee, callArgs), callerArgs, body);
                    break;
                }
            case "break":
                _pos++;
                Expect(TokenKind.CloseStatement, "Expected closing statement token");
                result = new BreakNode();
                break;
            case "continue":
                _pos++;
                Expect(TokenKind.CloseStatement, "Expected closing statement token");
                result = new ContinueNode();
                break;
            case "filter":
                {
                    _pos++;
                    var filter = ParsePrimary();
                    if (filter is IdentifierNode && Is(TokenKind.OpenParen))
                    {
                        filter = ParseCall(filter);
                    }
                    Expect(TokenKind.CloseStatement, "Expected closing statement token");
                    var body = ParseUntil("endfilter");
                    Expect(TokenKind.OpenStatement, "Expected '{%'");
                    ExpectIdentifier("endfilter");
                    Expect(TokenKind.CloseStatement, "Expected '%}'");
                    result = new FilterBlockNode(filter, body);
                    break;
                }
            default:
                throw new JinjaException($"Unknown statement type: {name}");
        }
        return result;
    }

    private SetNode ParseSet()
    {
        var left = ParseExpressionSequence(primary: false);
        Node? value = null;
        var body = new List<Node>();
        if (Is(TokenKind.Equals))
        {
            _pos++;
            value = ParseExpressionSequence(primary: false);
        }
        else
        {
            Expect(TokenKind.CloseStatement, "Expected %} token");
            body = ParseUntil("endset");
            Expect(TokenKind.OpenStatement, "Expected {% token");
            ExpectIdentifier("endset");
        }
        Expect(TokenKind.CloseStatement, "Expected closing statement token");
        return new SetNode(left, value, body);
    }

    private IfNode ParseIf()
    {
        var test = ParseExpression();
        Expect(TokenKind.CloseStatement, "Expected closing statement token");
        var body = ParseUntil("elif", "else", "endif");
        var alternate = new List<Node>();
        if (IsStatement("elif"))
        {
            _pos += 2;
            alternate.Add(ParseIf());
        }
        else if (IsStatement("else"))
        {
            _pos += 2;
            Expect(TokenKind.CloseStatement, "Expected closing statement token");
            alternate = ParseUntil("endif");
        }
        return new IfNode(test, body, alternate);
    }

    private ForNode ParseFor()
    {
        var loopVar = ParseExpressionSequence(primary: true);
        if (loopVar is not (IdentifierNode or TupleNode))
        {
            throw new JinjaException("Expected identifier/tuple for the loop variable");
        }
        if (!IsIdentifier("in"))
        {
            throw new JinjaException("Expected `in` keyword following loop variable");
        }
        _pos++;
        var iterable = ParseExpression();
        Expect(TokenKind.CloseStatement, "Expected closing statement token");
        var body = ParseUntil("endfor", "else");
        var alternative = new List<Node>();
        if (IsStatement("else"))
        {
            _pos += 2;
            Expect(TokenKind.CloseStatement, "Expected closing statement token");
            alternative = ParseUntil("endfor");
        }
        return new ForNode(loopVar, iterable, body, alternative);
    }

    private Node ParseExpressionSequence(bool primary)
    {
        Node Next() => primary ? ParsePrimary() : ParseExpression();
        var first = Next();
        if (!Is(TokenKind.Comma))
        {
            return first;
        }
        var items = new List<Node> { first };
        while (true)
        {
            _pos++;
            items.Add(Next());
            if (!Is(TokenKind.Comma))
            {
                break;
            }
        }
        return new TupleNode(items);
    }

    private Node ParseExpression() => ParseIfExpression();

    private Node ParseIfExpression()
    {
        var a = ParseOr();
        if (IsIdentifier("if"))
        {
            _pos++;
            var test = ParseOr();
            if (IsIdentifier("else"))
            {
                _pos++;
                var falseExpr = ParseIfExpression();
                return new TernaryNode(test, a, falseExpr);
            }
            return new SelectNode(a, test);
        }
        return a;
    }

    private Node ParseOr()
    {
        var left = ParseAnd();
        while (IsIdentifier("or"))
        {
            _pos++;
            left = new BinaryNode("or", left, ParseAnd());
        }
        return left;
    }

    private Node ParseAnd()
    {
        var left = ParseNot();
        while (IsIdentifier("and"))
        {
            _pos++;
            left = new BinaryNode("and", left, ParseNot());
        }
        return left;
    }

    private Node ParseNot()
    {
        if (IsIdentifier("not"))
        {
            _pos++;
            return new UnaryNode("not", ParseNot());
        }
        return ParseComparison();
    }

    private Node ParseComparison()
    {
        var left = ParseAdditive();
        while (true)
        {
            string op;
            if (IsIdentifier("not", "in"))
            {
                op = "not in";
                _pos += 2;
            }
            else if (IsIdentifier("in"))
            {
                op = "in";
                _pos++;
            }
            else if (Is(TokenKind.Comparison))
            {
                op = _tokens[_pos++].Value;
            }
            else
            {
                break;
            }
            left = new BinaryNode(op, left, ParseAdditive());
        }
        return left;
    }

    private Node ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Is(TokenKind.Additive))
        {
            var op = _tokens[_pos++].Value;
            left = new BinaryNode(op, left, ParseMultiplicative());
        }
        return left;
    }

    private Node ParseMultiplicative()
    {
        var left = ParsePower();
        while (Is(TokenKind.Multiplicative))
        {
            var op = _tokens[_pos++].Value;
            left = new BinaryNode(op, left, ParsePower());
        }
        return left;
    }

    private Node ParsePower()
    {
        var left = ParseTest();
        while (Is(TokenKind.Power))
        {
            _pos++;
            left = new BinaryNode("**", left, ParseTest());
        }
        return left;
    }

    private Node ParseTest()
    {
        var operand = ParseFilter();
        while (IsIdentifier("is"))
        {
            _pos++;
            var negate = IsIdentifier("not");
            if (negate)
            {
                _pos++;
            }
            var test = ParsePrimary() as IdentifierNode ?? throw new JinjaException("Expected identifier for the test");
            operand = new TestNode(operand, negate, test.Name);
        }
        return operand;
    }

    private Node ParseFilter()
    {
        var operand = ParseUnarySign();
        while (Is(TokenKind.Pipe))
        {
            _pos++;
            Node filter = ParsePrimary() as IdentifierNode ?? throw new JinjaException("Expected identifier for the filter");
            if (Is(TokenKind.OpenParen))
            {
                filter = ParseCall(filter);
            }
            operand = new FilterNode(operand, filter);
        }
        return operand;
    }

    private Node ParseUnarySign()
    {
        if (_pos < _tokens.Count && _tokens[_pos].Kind is TokenKind.Unary or TokenKind.Additive && _tokens[_pos].Value is "-" or "+")
        {
            var op = _tokens[_pos++].Value;
            return new UnaryNode(op, ParseUnarySign());
        }
        var member = ParseMember(ParsePrimary());
        return Is(TokenKind.OpenParen) ? ParseCall(member) : member;
    }

    private Node ParseCall(Node callee)
    {
        Node expression = new CallNode(callee, ParseArgs(parameters: false));
        expression = ParseMember(expression);
        if (Is(TokenKind.OpenParen))
        {
            expression = ParseCall(expression);
        }
        return expression;
    }

    private List<Node> ParseArgs(bool parameters)
    {
        Expect(TokenKind.OpenParen, "Expected opening parenthesis for arguments list");
        var args = new List<Node>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var sawKeyword = false;
        var sawSpread = false;
        while (!Is(TokenKind.CloseParen))
        {
            if (_pos >= _tokens.Count)
            {
                throw new JinjaException("Expected closing parenthesis for arguments list");
            }
            var isKeywordSpread = Is(TokenKind.Power);
            var isSpread = Is(TokenKind.Multiplicative) && _tokens[_pos].Value == "*";
            if (parameters && (isKeywordSpread || isSpread))
            {
                throw new JinjaException("Argument unpacking is not allowed in parameter declarations");
            }
            if (isKeywordSpread)
            {
                _pos++;
                args.Add(new KeywordSpreadNode(ParseExpression()));
                if (Is(TokenKind.Comma))
                {
                    _pos++;
                }
                if (!Is(TokenKind.CloseParen))
                {
                    throw new JinjaException("Expected closing parenthesis: `**` must be applied to the final argument");
                }
                break;
            }
            Node argument;
            if (isSpread)
            {
                if (sawSpread)
                {
                    throw new JinjaException("Only one `*` argument unpacking is allowed");
                }
                sawSpread = true;
                _pos++;
                argument = new SpreadNode(ParseExpression());
            }
            else
            {
                argument = ParseExpression();
                if (Is(TokenKind.Equals))
                {
                    _pos++;
                    if (argument is not IdentifierNode id)
                    {
                        throw new JinjaException("Expected identifier for keyword argument");
                    }
                    argument = new KeywordArgNode(id.Name, ParseExpression());
                }
                if (parameters)
                {
                    var paramName = argument switch
                    {
                        IdentifierNode i => i.Name,
                        KeywordArgNode k => k.Key,
                        _ => throw new JinjaException("Expected identifier for parameter declaration"),
                    };
                    if (!names.Add(paramName))
                    {
                        throw new JinjaException($"Duplicate parameter name: {paramName}");
                    }
                }
                if (argument is KeywordArgNode)
                {
                    sawKeyword = true;
                }
                else if (sawKeyword)
                {
                    throw new JinjaException(parameters ? "Non-default argument follows default argument" : "Positional arguments must come before keyword arguments");
                }
                else if (sawSpread)
                {
                    throw new JinjaException("Positional arguments must not follow `*` argument unpacking");
                }
            }
            args.Add(argument);
            if (Is(TokenKind.Comma))
            {
                _pos++;
            }
        }
        Expect(TokenKind.CloseParen, "Expected closing parenthesis for arguments list");
        return args;
    }

    private Node ParseMember(Node target)
    {
        while (Is(TokenKind.Dot) || Is(TokenKind.OpenSquare))
        {
            var computed = _tokens[_pos++].Kind == TokenKind.OpenSquare;
            Node property;
            if (computed)
            {
                property = ParseSubscript();
                Expect(TokenKind.CloseSquare, "Expected closing square bracket");
            }
            else
            {
                property = ParsePrimary();
                if (property is not (IdentifierNode or IntegerNode))
                {
                    throw new JinjaException("Expected identifier or integer following dot operator");
                }
            }
            target = new MemberNode(target, property, computed);
        }
        return target;
    }

    private Node ParseSubscript()
    {
        var slices = new List<Node?>();
        var isSlice = false;
        while (!Is(TokenKind.CloseSquare))
        {
            if (_pos >= _tokens.Count)
            {
                throw new JinjaException("Expected closing square bracket");
            }
            if (Is(TokenKind.Colon))
            {
                slices.Add(null);
                _pos++;
                isSlice = true;
            }
            else
            {
                slices.Add(ParseExpression());
                if (Is(TokenKind.Colon))
                {
                    _pos++;
                    isSlice = true;
                }
            }
        }
        if (slices.Count == 0)
        {
            throw new JinjaException("Expected at least one argument for member/slice expression");
        }
        if (isSlice)
        {
            if (slices.Count > 3)
            {
                throw new JinjaException("Expected 0-3 arguments for slice expression");
            }
            return new SliceNode(slices[0], slices.Count > 1 ? slices[1] : null, slices.Count > 2 ? slices[2] : null);
        }
        return slices[0]!;
    }

    private Node ParsePrimary()
    {
        var token = Current;
        _pos++;
        switch (token.Kind)
        {
            case TokenKind.Number:
                {
                    var value = double.Parse(token.Value, NumberStyles.Float, CultureInfo.InvariantCulture);
                    return token.Value.Contains('.', StringComparison.Ordinal) ? new FloatNode(value) : new IntegerNode(value);
                }
            case TokenKind.String:
                {
                    var value = token.Value;
                    while (Is(TokenKind.String))
                    {
                        value += _tokens[_pos++].Value;
                    }
                    return new StringNode(value);
                }
            case TokenKind.Identifier:
                return new IdentifierNode(token.Value);
            case TokenKind.OpenParen:
                {
                    var expression = ParseExpressionSequence(primary: false);
                    Expect(TokenKind.CloseParen, "Expected closing parenthesis");
                    return expression;
                }
            case TokenKind.OpenSquare:
                {
                    var items = new List<Node>();
                    while (!Is(TokenKind.CloseSquare))
                    {
                        if (_pos >= _tokens.Count)
                        {
                            throw new JinjaException("Expected closing square bracket");
                        }
                        items.Add(ParseExpression());
                        if (Is(TokenKind.Comma))
                        {
                            _pos++;
                        }
                    }
                    _pos++;
                    return new ArrayNode(items);
                }
            case TokenKind.OpenCurly:
                {
                    var entries = new List<KeyValuePair<Node, Node>>();
                    while (!Is(TokenKind.CloseCurly))
                    {
                        if (_pos >= _tokens.Count)
                        {
                            throw new JinjaException("Expected closing curly bracket");
                        }
                        var key = ParseExpression();
                        Expect(TokenKind.Colon, "Expected colon between key and value in object literal");
                        entries.Add(new(key, ParseExpression()));
                        if (Is(TokenKind.Comma))
                        {
                            _pos++;
                        }
                    }
                    _pos++;
                    return new ObjectNode(entries);
                }
            default:
                throw new JinjaException($"Unexpected token: {token.Kind}");
        }
    }
}
