using System.Globalization;
using System.Text;

namespace KServe.Node.LlmServer.Templates;

internal sealed class JinjaScope(JinjaScope? parent)
{
    private readonly Dictionary<string, JinjaValue> _vars = new(StringComparer.Ordinal);

    public JinjaScope? Parent { get; } = parent;

    public void Set(string name, JinjaValue value) => _vars[name] = value;

    public JinjaValue Lookup(string name)
    {
        for (var s = this; s is not null; s = s.Parent)
        {
            if (s._vars.TryGetValue(name, out var v))
            {
                return v;
            }
        }
        return JinjaUndefined.Instance;
    }
}

internal sealed class BreakSignal : Exception;

internal sealed class ContinueSignal : Exception;

/// <summary>Evaluates a parsed template. Output of a loop iteration that ends in break/continue is dropped, as in the reference renderer.</summary>
internal sealed partial class JinjaInterpreter
{
    private const int MaxDepth = 200;
    private int _depth;

    public string Render(List<Node> program, JinjaScope scope) => EvaluateBlock(program, scope);

    private string EvaluateBlock(List<Node> statements, JinjaScope scope)
    {
        var sb = new StringBuilder();
        foreach (var statement in statements)
        {
            var v = Evaluate(statement, scope);
            if (v is not (JinjaNull or JinjaUndefined))
            {
                sb.Append(v.ToString());
            }
        }
        return sb.ToString();
    }

    private JinjaValue Evaluate(Node? node, JinjaScope scope)
    {
        if (node is null)
        {
            return JinjaUndefined.Instance;
        }
        if (++_depth > MaxDepth)
        {
            _depth = 0;
            throw new JinjaException("Template recursion is too deep");
        }
        try
        {
            return node switch
            {
                TextNode t => new JinjaString(t.Text),
                CommentNode => JinjaNull.Instance,
                SetNode s => EvaluateSet(s, scope),
                IfNode i => new JinjaString(EvaluateBlock(Evaluate(i.Test, scope).IsTruthy ? i.Body : i.Alternate, scope)),
                ForNode f => EvaluateFor(f, scope),
                MacroNode m => EvaluateMacro(m, scope),
                CallBlockNode c => EvaluateCallBlock(c, scope),
                FilterBlockNode fb => ApplyFilter(new JinjaString(EvaluateBlock(fb.Body, scope)), fb.Filter, scope),
                BreakNode => throw new BreakSignal(),
                ContinueNode => throw new ContinueSignal(),
                IntegerNode n => new JinjaInteger(n.Value),
                FloatNode n => new JinjaFloat(n.Value),
                StringNode s => new JinjaString(s.Value),
                ArrayNode a => new JinjaArray(a.Items.Select(x => Evaluate(x, scope)).ToList()),
                TupleNode t => new JinjaTuple(t.Items.Select(x => Evaluate(x, scope)).ToList()),
                ObjectNode o => EvaluateObject(o, scope),
                IdentifierNode id => scope.Lookup(id.Name),
                CallNode c => EvaluateCall(c, scope),
                MemberNode m => EvaluateMember(m, scope),
                UnaryNode u => EvaluateUnary(u, scope),
                BinaryNode b => EvaluateBinary(b, scope),
                FilterNode f => ApplyFilter(Evaluate(f.Operand, scope), f.Filter, scope),
                TestNode t => EvaluateTest(t, scope),
                SelectNode s => Evaluate(s.Test, scope).IsTruthy ? Evaluate(s.Value, scope) : JinjaUndefined.Instance,
                TernaryNode t => Evaluate(t.Condition, scope).IsTruthy ? Evaluate(t.IfTrue, scope) : Evaluate(t.IfFalse, scope),
                _ => throw new JinjaException($"Unknown node type: {node.GetType().Name}"),
            };
        }
        finally
        {
            _depth--;
        }
    }

    private JinjaObject EvaluateObject(ObjectNode o, JinjaScope scope)
    {
        var result = new JinjaObject();
        foreach (var (k, v) in o.Entries)
        {
            var key = Evaluate(k, scope);
            if (!PythonKeyComparer.IsHashable(key))
            {
                throw new JinjaException($"Object keys must be hashable: got {key.TypeName}");
            }
            result.Items[key] = Evaluate(v, scope);
        }
        return result;
    }

    private static bool IsNumeric(JinjaValue v) => v is JinjaInteger or JinjaFloat;

    internal static double Num(JinjaValue v) => v switch
    {
        JinjaInteger i => i.Value,
        JinjaFloat f => f.Value,
        JinjaBool b => b.Value ? 1 : 0,
        _ => double.NaN,
    };

    /// <summary>JavaScript's loose <c>==</c> between the underlying primitives.</summary>
    private static bool LooseEquals(JinjaValue a, JinjaValue b)
    {
        var aNullish = a is JinjaNull or JinjaUndefined;
        var bNullish = b is JinjaNull or JinjaUndefined;
        if (aNullish || bNullish)
        {
            return aNullish && bNullish;
        }
        if (a is JinjaString sa && b is JinjaString sb)
        {
            return string.Equals(sa.Value, sb.Value, StringComparison.Ordinal);
        }
        if (a is JinjaBool or JinjaInteger or JinjaFloat or JinjaString && b is JinjaBool or JinjaInteger or JinjaFloat or JinjaString)
        {
            return ToJsNumber(a) == ToJsNumber(b);
        }
        return ReferenceOf(a) is { } ra && ReferenceEquals(ra, ReferenceOf(b));
    }

    /// <summary>JavaScript's strict <c>===</c> between the underlying primitives.</summary>
    internal static bool StrictEquals(JinjaValue a, JinjaValue b)
    {
        if (a is JinjaNull or JinjaUndefined)
        {
            return b is JinjaNull or JinjaUndefined;
        }
        return (a, b) switch
        {
            (JinjaString x, JinjaString y) => string.Equals(x.Value, y.Value, StringComparison.Ordinal),
            (JinjaBool x, JinjaBool y) => x.Value == y.Value,
            (JinjaInteger or JinjaFloat, JinjaInteger or JinjaFloat) => Num(a) == Num(b),
            _ => ReferenceOf(a) is { } r && ReferenceEquals(r, ReferenceOf(b)),
        };
    }

    private static object? ReferenceOf(JinjaValue v) => v switch
    {
        JinjaArray a => a.Items,
        JinjaObject o => o.Items,
        JinjaNamespace n => n.Items,
        JinjaFunction f => f.Invoke,
        _ => null,
    };

    private static double ToJsNumber(JinjaValue v)
    {
        if (v is JinjaString s)
        {
            var t = StringMethods.JsTrim(s.Value);
            if (t.Length == 0)
            {
                return 0;
            }
            return double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : double.NaN;
        }
        return Num(v);
    }

    private JinjaValue EvaluateBinary(BinaryNode node, JinjaScope scope)
    {
        var left = Evaluate(node.Left, scope);
        switch (node.Operator)
        {
            case "and":
                return left.IsTruthy ? Evaluate(node.Right, scope) : left;
            case "or":
                return left.IsTruthy ? left : Evaluate(node.Right, scope);
        }
        var right = Evaluate(node.Right, scope);
        var op = node.Operator;
        switch (op)
        {
            case "==":
                return JinjaBool.Of(LooseEquals(left, right));
            case "!=":
                return JinjaBool.Of(!LooseEquals(left, right));
        }
        if (left is JinjaUndefined || right is JinjaUndefined)
        {
            if (right is JinjaUndefined && op is "in" or "not in")
            {
                return JinjaBool.Of(op == "not in");
            }
            throw new JinjaException($"Cannot perform operation {op} on undefined values");
        }
        if (left is JinjaNull || right is JinjaNull)
        {
            throw new JinjaException("Cannot perform operation on null values");
        }
        if (op == "~")
        {
            return new JinjaString(left.JsString() + right.JsString());
        }
        if (op == "**" && left is JinjaInteger or JinjaFloat or JinjaBool && right is JinjaInteger or JinjaFloat or JinjaBool)
        {
            var a = Num(left);
            var b = Num(right);
            if (a == 0 && b < 0)
            {
                throw new JinjaException("0.0 cannot be raised to a negative power");
            }
            var r = Math.Pow(a, b);
            if (!double.IsFinite(r))
            {
                throw new JinjaException("Exponentiation result is not a finite real number");
            }
            return left is JinjaFloat || right is JinjaFloat || b < 0 ? new JinjaFloat(r) : new JinjaInteger(r);
        }
        if (IsNumeric(left) && IsNumeric(right))
        {
            var a = Num(left);
            var b = Num(right);
            var isFloat = left is JinjaFloat || right is JinjaFloat;
            JinjaValue Number(double v) => isFloat ? new JinjaFloat(v) : new JinjaInteger(v);
            switch (op)
            {
                case "+": return Number(a + b);
                case "-": return Number(a - b);
                case "*": return Number(a * b);
                case "/": return new JinjaFloat(a / b);
                case "//": return Number(Math.Floor(a / b));
                case "%": return Number(a % b);
                case "<": return JinjaBool.Of(a < b);
                case ">": return JinjaBool.Of(a > b);
                case ">=": return JinjaBool.Of(a >= b);
                case "<=": return JinjaBool.Of(a <= b);
            }
        }
        else if (left is JinjaArray la && right is JinjaArray ra)
        {
            if (op == "+")
            {
                return new JinjaArray([.. la.Items, .. ra.Items]);
            }
        }
        else if (right is JinjaArray rArr)
        {
            var member = rArr.Items.Any(x => StrictEquals(x, left));
            switch (op)
            {
                case "in": return JinjaBool.Of(member);
                case "not in": return JinjaBool.Of(!member);
            }
        }
        if ((left is JinjaString || right is JinjaString) && op == "+")
        {
            return new JinjaString(left.JsString() + right.JsString());
        }
        if (left is JinjaString ls && right is JinjaString rs)
        {
            switch (op)
            {
                case "in": return JinjaBool.Of(rs.Value.Contains(ls.Value, StringComparison.Ordinal));
                case "not in": return JinjaBool.Of(!rs.Value.Contains(ls.Value, StringComparison.Ordinal));
            }
        }
        if (right is JinjaObject ro && PythonKeyComparer.IsHashable(left))
        {
            switch (op)
            {
                case "in": return JinjaBool.Of(ro.Items.ContainsKey(left));
                case "not in": return JinjaBool.Of(!ro.Items.ContainsKey(left));
            }
        }
        throw new JinjaException($"Unknown operator \"{op}\" between {left.TypeName} and {right.TypeName}");
    }

    private JinjaValue EvaluateUnary(UnaryNode node, JinjaScope scope)
    {
        var v = Evaluate(node.Operand, scope);
        switch (node.Operator)
        {
            case "not":
                return JinjaBool.Of(!v.IsTruthy);
            case "+":
            case "-":
                {
                    var sign = node.Operator == "-" ? -1 : 1;
                    if (v is JinjaInteger or JinjaFloat or JinjaBool)
                    {
                        var r = sign * Num(v);
                        return v is JinjaFloat ? new JinjaFloat(r) : new JinjaInteger(r);
                    }
                    throw new JinjaException($"Unknown operator \"{node.Operator}\" for {v.TypeName}");
                }
            default:
                throw new JinjaException($"Unknown operator: {node.Operator}");
        }
    }

    private (List<JinjaValue> Positional, OrderedDictionary<string, JinjaValue> Keyword) EvaluateArguments(List<Node> args, JinjaScope scope)
    {
        var positional = new List<JinjaValue>();
        var keyword = new OrderedDictionary<string, JinjaValue>(StringComparer.Ordinal);
        void AddKeyword(string key, JinjaValue value)
        {
            if (!keyword.TryAdd(key, value))
            {
                throw new JinjaException($"Got multiple values for keyword argument '{key}'");
            }
        }
        foreach (var arg in args)
        {
            if (arg is SpreadNode spread)
            {
                if (Evaluate(spread.Value, scope) is not JinjaArray arr)
                {
                    throw new JinjaException("Cannot unpack non-iterable type");
                }
                positional.AddRange(arr.Items);
            }
            else if (arg is not (KeywordArgNode or KeywordSpreadNode))
            {
                positional.Add(Evaluate(arg, scope));
            }
        }
        foreach (var arg in args)
        {
            if (arg is KeywordArgNode kw)
            {
                AddKeyword(kw.Key, Evaluate(kw.Value, scope));
            }
            else if (arg is KeywordSpreadNode ks)
            {
                if (Evaluate(ks.Value, scope) is not JinjaObject obj)
                {
                    throw new JinjaException("Argument after ** must be a mapping");
                }
                foreach (var (k, v) in obj.Items)
                {
                    AddKeyword(k is JinjaString name ? name.Value : throw new JinjaException("keywords must be strings"), v);
                }
            }
        }
        return (positional, keyword);
    }

    private static List<JinjaValue> WithKwargs(List<JinjaValue> positional, OrderedDictionary<string, JinjaValue> keyword)
    {
        if (keyword.Count > 0)
        {
            var kw = new JinjaKwargs();
            foreach (var (k, v) in keyword)
            {
                kw.Items[new JinjaString(k)] = v;
            }
            positional.Add(kw);
        }
        return positional;
    }

    private JinjaValue EvaluateCall(CallNode node, JinjaScope scope)
    {
        var (args, kwargs) = EvaluateArguments(node.Args, scope);
        WithKwargs(args, kwargs);
        var fn = Evaluate(node.Callee, scope);
        if (fn is not JinjaFunction f)
        {
            throw new JinjaException($"Cannot call something that is not a function: got {fn.TypeName}");
        }
        return f.Invoke(args, scope);
    }

    private static List<T> Slice<T>(List<T> array, double? start, double? stop, double? step)
    {
        var st = step ?? 1;
        if (st == 0)
        {
            throw new JinjaException("slice step cannot be zero");
        }
        var n = array.Count;
        double s, e;
        if (st > 0)
        {
            s = start ?? 0;
            s = s < 0 ? Math.Max(n + s, 0) : Math.Min(s, n);
            e = stop ?? n;
            e = e < 0 ? Math.Max(n + e, 0) : Math.Min(e, n);
        }
        else
        {
            s = start ?? n - 1;
            s = s < 0 ? Math.Max(n + s, -1) : Math.Min(s, n - 1);
            e = stop ?? -1;
            e = e < -1 ? Math.Max(n + e, -1) : Math.Min(e, n - 1);
        }
        var dir = Math.Sign(st);
        var result = new List<T>();
        for (var i = s; dir * i < dir * e; i += st)
        {
            result.Add(array[(int)i]);
        }
        return result;
    }

    private JinjaValue EvaluateSlice(JinjaValue target, SliceNode slice, JinjaScope scope)
    {
        if (target is not (JinjaArray or JinjaString))
        {
            throw new JinjaException("Slice object must be an array or string");
        }
        double? Part(Node? n, string what)
        {
            var v = Evaluate(n, scope);
            return v switch
            {
                JinjaInteger i => i.Value,
                JinjaUndefined => null,
                _ => throw new JinjaException($"Slice {what} must be numeric or undefined"),
            };
        }
        var start = Part(slice.Start, "start");
        var stop = Part(slice.Stop, "stop");
        var step = Part(slice.Step, "step");
        if (target is JinjaArray arr)
        {
            return new JinjaArray(Slice(arr.Items, start, stop, step));
        }
        var codePoints = CodePoints(((JinjaString)target).Value);
        return new JinjaString(string.Concat(Slice(codePoints, start, stop, step)));
    }

    internal static List<string> CodePoints(string s)
    {
        var result = new List<string>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                result.Add(s.Substring(i, 2));
                i++;
            }
            else
            {
                result.Add(s[i].ToString());
            }
        }
        return result;
    }

    private JinjaValue EvaluateMember(MemberNode node, JinjaScope scope)
    {
        var target = Evaluate(node.Target, scope);
        JinjaValue property;
        if (node.Computed)
        {
            if (node.Property is SliceNode slice)
            {
                return EvaluateSlice(target, slice, scope);
            }
            property = Evaluate(node.Property, scope);
        }
        else if (node.Property is IntegerNode i)
        {
            property = new JinjaInteger(i.Value);
        }
        else
        {
            property = new JinjaString(((IdentifierNode)node.Property).Name);
        }
        JinjaValue? value;
        if (target is JinjaObject o && PythonKeyComparer.IsHashable(property))
        {
            value = o.Items.TryGetValue(property, out var v) ? v : property is JinjaString name ? o.Builtin(name.Value) : null;
        }
        else if (target is JinjaObject or JinjaNamespace)
        {
            if (property is not JinjaString key)
            {
                throw new JinjaException($"Cannot access property with non-string: got {property.TypeName}");
            }
            value = ((JinjaNamespace)target).Items.TryGetValue(key.Value, out var v) ? v : target.Builtin(key.Value);
        }
        else if (target is JinjaArray or JinjaString)
        {
            if (property is JinjaInteger idx)
            {
                var index = (long)idx.Value;
                if (target is JinjaString s)
                {
                    var at = index < 0 ? s.Value.Length + index : index;
                    value = at >= 0 && at < s.Value.Length ? new JinjaString(s.Value[(int)at].ToString()) : null;
                }
                else
                {
                    var items = ((JinjaArray)target).Items;
                    var at = index < 0 ? items.Count + index : index;
                    value = at >= 0 && at < items.Count ? items[(int)at] : null;
                }
            }
            else if (property is JinjaString name)
            {
                value = target.Builtin(name.Value);
            }
            else
            {
                throw new JinjaException($"Cannot access property with non-string/non-number: got {property.TypeName}");
            }
        }
        else
        {
            if (property is not JinjaString name)
            {
                throw new JinjaException($"Cannot access property with non-string: got {property.TypeName}");
            }
            value = target.Builtin(name.Value);
        }
        return value ?? JinjaUndefined.Instance;
    }

    private JinjaNull EvaluateSet(SetNode node, JinjaScope scope)
    {
        var rhs = node.Value is not null ? Evaluate(node.Value, scope) : new JinjaString(EvaluateBlock(node.Body, scope));
        switch (node.Target)
        {
            case IdentifierNode id:
                scope.Set(id.Name, rhs);
                break;
            case TupleNode tuple:
                {
                    if (rhs is not JinjaArray arr)
                    {
                        throw new JinjaException($"Cannot unpack non-iterable type in set: {rhs.TypeName}");
                    }
                    if (arr.Items.Count != tuple.Items.Count)
                    {
                        throw new JinjaException($"Too {(tuple.Items.Count > arr.Items.Count ? "few" : "many")} items to unpack in set");
                    }
                    for (var i = 0; i < tuple.Items.Count; i++)
                    {
                        if (tuple.Items[i] is not IdentifierNode name)
                        {
                            throw new JinjaException("Cannot unpack to non-identifier in set");
                        }
                        scope.Set(name.Name, arr.Items[i]);
                    }
                    break;
                }
            case MemberNode member:
                {
                    if (Evaluate(member.Target, scope) is not JinjaNamespace ns)
                    {
                        throw new JinjaException("cannot assign attribute on non-namespace object");
                    }
                    if (member.Property is not IdentifierNode prop)
                    {
                        throw new JinjaException("Cannot assign to member with non-identifier property");
                    }
                    ns.Items[prop.Name] = rhs;
                    break;
                }
            default:
                throw new JinjaException("Invalid LHS inside assignment expression");
        }
        return JinjaNull.Instance;
    }

    private JinjaString EvaluateFor(ForNode node, JinjaScope outer)
    {
        var scope = new JinjaScope(outer);
        Node? test = null;
        JinjaValue iterable;
        if (node.Iterable is SelectNode select)
        {
            iterable = Evaluate(select.Value, scope);
            test = select.Test;
        }
        else
        {
            iterable = Evaluate(node.Iterable, scope);
        }
        // Python's jinja2 (what transformers runs) and llama.cpp iterate an undefined value as an empty sequence:
        // tool-use templates loop over `tools` without a guard, and a chat without tools leaves it undefined.
        if (iterable is JinjaUndefined)
        {
            iterable = new JinjaArray([]);
        }
        if (iterable is not (JinjaArray or JinjaObject))
        {
            throw new JinjaException($"Expected iterable or object type in for loop: got {iterable.TypeName}");
        }
        var source = iterable is JinjaObject obj ? obj.Keys().Items : ((JinjaArray)iterable).Items;

        void Bind(JinjaScope target, JinjaValue current)
        {
            if (node.LoopVar is IdentifierNode id)
            {
                target.Set(id.Name, current);
                return;
            }
            var tuple = (TupleNode)node.LoopVar;
            if (current is not JinjaArray arr)
            {
                throw new JinjaException($"Cannot unpack non-iterable type: {current.TypeName}");
            }
            if (tuple.Items.Count != arr.Items.Count)
            {
                throw new JinjaException($"Too {(tuple.Items.Count > arr.Items.Count ? "few" : "many")} items to unpack");
            }
            for (var j = 0; j < tuple.Items.Count; j++)
            {
                if (tuple.Items[j] is not IdentifierNode name)
                {
                    throw new JinjaException("Cannot unpack non-identifier type");
                }
                target.Set(name.Name, arr.Items[j]);
            }
        }

        var items = new List<JinjaValue>();
        foreach (var current in source.ToList())
        {
            if (test is not null)
            {
                var loopScope = new JinjaScope(scope);
                Bind(loopScope, current);
                if (!Evaluate(test, loopScope).IsTruthy)
                {
                    continue;
                }
            }
            else if (node.LoopVar is TupleNode)
            {
                Bind(new JinjaScope(scope), current);
            }
            items.Add(current);
        }

        var result = new StringBuilder();
        var noIteration = true;
        for (var i = 0; i < items.Count; i++)
        {
            var loop = new JinjaObject();
            loop.Items[new JinjaString("index")] = new JinjaInteger(i + 1);
            loop.Items[new JinjaString("index0")] = new JinjaInteger(i);
            loop.Items[new JinjaString("revindex")] = new JinjaInteger(items.Count - i);
            loop.Items[new JinjaString("revindex0")] = new JinjaInteger(items.Count - i - 1);
            loop.Items[new JinjaString("first")] = JinjaBool.Of(i == 0);
            loop.Items[new JinjaString("last")] = JinjaBool.Of(i == items.Count - 1);
            loop.Items[new JinjaString("length")] = new JinjaInteger(items.Count);
            loop.Items[new JinjaString("previtem")] = i > 0 ? items[i - 1] : JinjaUndefined.Instance;
            loop.Items[new JinjaString("nextitem")] = i < items.Count - 1 ? items[i + 1] : JinjaUndefined.Instance;
            scope.Set("loop", loop);
            Bind(scope, items[i]);
            try
            {
                result.Append(EvaluateBlock(node.Body, scope));
            }
            catch (ContinueSignal)
            {
                continue;
            }
            catch (BreakSignal)
            {
                break;
            }
            noIteration = false;
        }
        if (noIteration)
        {
            result.Append(EvaluateBlock(node.Else, scope));
        }
        return new JinjaString(result.ToString());
    }

    private static HashSet<string> SpecialArguments(List<Node> parameters, List<Node> body)
    {
        // Only kwargs/varargs matter; a conservative scan of identifiers is enough to decide whether the
        // macro accepts extra arguments.
        var declared = parameters.Select(ParameterName).Where(n => n is "kwargs" or "varargs").ToHashSet();
        var accessed = new HashSet<string>();
        void Visit(Node? n)
        {
            switch (n)
            {
                case null:
                    return;
                case IdentifierNode id:
                    if (id.Name is "kwargs" or "varargs" && !declared.Contains(id.Name))
                    {
                        accessed.Add(id.Name);
                    }
                    return;
                case MemberNode m:
                    Visit(m.Target);
                    if (m.Computed)
                    {
                        Visit(m.Property);
                    }
                    return;
                case FilterNode f:
                    Visit(f.Operand);
                    if (f.Filter is CallNode fc)
                    {
                        fc.Args.ForEach(Visit);
                    }
                    return;
                case TestNode t:
                    Visit(t.Operand);
                    return;
                case SetNode s:
                    Visit(s.Value);
                    s.Body.ForEach(Visit);
                    return;
                case ForNode f:
                    Visit(f.Iterable);
                    f.Body.ForEach(Visit);
                    f.Else.ForEach(Visit);
                    return;
                case IfNode i:
                    Visit(i.Test);
                    i.Body.ForEach(Visit);
                    i.Alternate.ForEach(Visit);
                    return;
                case MacroNode m:
                    m.Body.ForEach(Visit);
                    return;
                case CallNode c:
                    Visit(c.Callee);
                    c.Args.ForEach(Visit);
                    return;
                case CallBlockNode cb:
                    Visit(cb.Call);
                    cb.Body.ForEach(Visit);
                    return;
                case FilterBlockNode fb:
                    fb.Body.ForEach(Visit);
                    return;
                case BinaryNode b:
                    Visit(b.Left);
                    Visit(b.Right);
                    return;
                case UnaryNode u:
                    Visit(u.Operand);
                    return;
                case SelectNode s:
                    Visit(s.Test);
                    Visit(s.Value);
                    return;
                case TernaryNode t:
                    Visit(t.Condition);
                    Visit(t.IfTrue);
                    Visit(t.IfFalse);
                    return;
                case ArrayNode a:
                    a.Items.ForEach(Visit);
                    return;
                case TupleNode t:
                    t.Items.ForEach(Visit);
                    return;
                case ObjectNode o:
                    foreach (var (k, v) in o.Entries)
                    {
                        Visit(k);
                        Visit(v);
                    }
                    return;
                case KeywordArgNode k:
                    Visit(k.Value);
                    return;
                case SpreadNode s:
                    Visit(s.Value);
                    return;
                case KeywordSpreadNode s:
                    Visit(s.Value);
                    return;
                case SliceNode s:
                    Visit(s.Start);
                    Visit(s.Stop);
                    Visit(s.Step);
                    return;
                default:
                    return;
            }
        }
        foreach (var p in parameters)
        {
            if (p is KeywordArgNode k)
            {
                Visit(k.Value);
            }
        }
        body.ForEach(Visit);
        return accessed;
    }

    private static string ParameterName(Node p) => p switch
    {
        IdentifierNode i => i.Name,
        KeywordArgNode k => k.Key,
        _ => throw new JinjaException("Expected identifier for parameter declaration"),
    };

    private void BindMacroArguments(string displayName, List<Node> parameters, HashSet<string> special, List<JinjaValue> args, JinjaScope scope)
    {
        var positional = args.ToList();
        var keyword = new OrderedDictionary<string, JinjaValue>(StringComparer.Ordinal);
        if (positional.Count > 0 && positional[^1] is JinjaKwargs kw)
        {
            positional.RemoveAt(positional.Count - 1);
            foreach (var (k, v) in kw.Items)
            {
                keyword[((JinjaString)k).Value] = v;
            }
        }
        var pending = new List<(string Name, Node Default)>();
        for (var i = 0; i < parameters.Count; i++)
        {
            var name = ParameterName(parameters[i]);
            JinjaValue? value = i < positional.Count ? positional[i] : null;
            if (value is null && keyword.Remove(name, out var kv))
            {
                value = kv;
            }
            if (value is null && parameters[i] is KeywordArgNode d)
            {
                pending.Add((name, d.Value));
            }
            scope.Set(name, value ?? JinjaUndefined.Instance);
        }
        if (special.Contains("kwargs"))
        {
            var obj = new JinjaObject();
            foreach (var (k, v) in keyword)
            {
                obj.Items[new JinjaString(k)] = v;
            }
            scope.Set("kwargs", obj);
        }
        else if (keyword.Count > 0)
        {
            throw new JinjaException($"macro {displayName} takes no keyword argument '{keyword.GetAt(0).Key}'");
        }
        if (special.Contains("varargs"))
        {
            scope.Set("varargs", new JinjaArray(positional.Skip(parameters.Count).ToList()));
        }
        else if (positional.Count > parameters.Count)
        {
            throw new JinjaException($"macro {displayName} takes not more than {parameters.Count} argument(s)");
        }
        foreach (var (name, dflt) in pending)
        {
            scope.Set(name, Evaluate(dflt, scope));
        }
    }

    private JinjaNull EvaluateMacro(MacroNode node, JinjaScope scope)
    {
        var special = SpecialArguments(node.Parameters, node.Body);
        scope.Set(node.Name, new JinjaFunction((args, callScope) =>
        {
            var macroScope = new JinjaScope(callScope);
            BindMacroArguments($"'{node.Name}'", node.Parameters, special, args, macroScope);
            return new JinjaString(EvaluateBlock(node.Body, macroScope));
        }));
        return JinjaNull.Instance;
    }

    private JinjaValue EvaluateCallBlock(CallBlockNode node, JinjaScope scope)
    {
        var parameters = node.CallerParameters ?? [];
        var special = SpecialArguments(parameters, node.Body);
        var caller = new JinjaFunction((callerArgs, _) =>
        {
            var env = new JinjaScope(scope);
            BindMacroArguments("None", parameters, special, callerArgs, env);
            return new JinjaString(EvaluateBlock(node.Body, env));
        });
        var (args, kwargs) = EvaluateArguments(node.Call.Args, scope);
        var kw = new JinjaKwargs();
        foreach (var (k, v) in kwargs)
        {
            kw.Items[new JinjaString(k)] = v;
        }
        args.Add(kw);
        var fn = Evaluate(node.Call.Callee, scope);
        if (fn is not JinjaFunction f)
        {
            throw new JinjaException($"Cannot call something that is not a function: got {fn.TypeName}");
        }
        var callEnv = new JinjaScope(scope);
        callEnv.Set("caller", caller);
        return f.Invoke(args, callEnv);
    }

    private JinjaBool EvaluateTest(TestNode node, JinjaScope scope)
    {
        var operand = Evaluate(node.Operand, scope);
        var result = RunTest(node.Test, operand, null);
        return JinjaBool.Of(node.Negate ? !result : result);
    }

    internal static bool RunTest(string name, JinjaValue operand, JinjaValue? arg) => name switch
    {
        "boolean" => operand is JinjaBool,
        "callable" => operand is JinjaFunction,
        "odd" => operand is JinjaInteger oi ? oi.Value % 2 != 0 : throw new JinjaException($"cannot odd on {operand.TypeName}"),
        "even" => operand is JinjaInteger ei ? ei.Value % 2 == 0 : throw new JinjaException($"cannot even on {operand.TypeName}"),
        "false" => operand is JinjaBool { Value: false },
        "true" => operand is JinjaBool { Value: true },
        "none" => operand is JinjaNull,
        "string" => operand is JinjaString,
        "number" => operand is JinjaInteger or JinjaFloat,
        "integer" => operand is JinjaInteger,
        "iterable" => operand is JinjaString || (operand is JinjaArray && operand is not JinjaTuple),
        "mapping" => operand is JinjaObject,
        "sequence" => operand is JinjaArray or JinjaObject or JinjaString,
        "lower" => operand is JinjaString ls && string.Equals(ls.Value, ls.Value.ToLowerInvariant(), StringComparison.Ordinal),
        "upper" => operand is JinjaString us && string.Equals(us.Value, us.Value.ToUpperInvariant(), StringComparison.Ordinal),
        "defined" => operand is not JinjaUndefined,
        "undefined" => operand is JinjaUndefined,
        "equalto" or "eq" => arg is not null ? StrictEquals(operand, arg) : throw new JinjaException("equalto needs a value"),
        _ => throw new JinjaException($"Unknown test: {name}"),
    };

    internal static int Compare(JinjaValue a, JinjaValue b, bool caseSensitive)
    {
        if (a is JinjaNull && b is JinjaNull)
        {
            return 0;
        }
        if (a is JinjaNull || b is JinjaNull || (a is JinjaUndefined) != (b is JinjaUndefined))
        {
            throw new JinjaException($"Cannot compare {a.TypeName} with {b.TypeName}");
        }
        if (a is JinjaUndefined)
        {
            return 0;
        }
        if (a is JinjaInteger or JinjaFloat or JinjaBool && b is JinjaInteger or JinjaFloat or JinjaBool)
        {
            return Num(a).CompareTo(Num(b)) switch { < 0 => -1, > 0 => 1, _ => 0 };
        }
        if (a.TypeName != b.TypeName)
        {
            throw new JinjaException($"Cannot compare different types: {a.TypeName} and {b.TypeName}");
        }
        if (a is JinjaString sa && b is JinjaString sb)
        {
            var x = caseSensitive ? sa.Value : sa.Value.ToLowerInvariant();
            var y = caseSensitive ? sb.Value : sb.Value.ToLowerInvariant();
            return Math.Sign(string.CompareOrdinal(x, y));
        }
        throw new JinjaException($"Cannot compare type: {a.TypeName}");
    }
}
