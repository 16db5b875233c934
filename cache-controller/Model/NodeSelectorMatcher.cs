using System.Globalization;
using k8s.Models;

namespace KServe.Node.CacheController.Model;

/// <summary>
/// Kubernetes' <c>MatchNodeSelectorTerms</c> semantics, used to decide which nodes belong to a node group
/// (the group's PV <c>nodeAffinity.required</c>): terms are ORed, the requirements inside a term are ANDed,
/// and a term with no requirements matches nothing (as in the scheduler).
/// </summary>
internal static class NodeSelectorMatcher
{
    /// <summary>True when <paramref name="node"/> satisfies the PV spec's required node affinity. No affinity matches no node.</summary>
    public static bool Matches(V1PersistentVolumeSpec? pvSpec, V1Node node) =>
        Matches(pvSpec?.NodeAffinity?.Required, node);

    /// <summary>True when <paramref name="node"/> satisfies at least one term of <paramref name="selector"/>.</summary>
    public static bool Matches(V1NodeSelector? selector, V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (selector?.NodeSelectorTerms is not { Count: > 0 } terms)
        {
            return false;
        }

        var labels = node.Metadata?.Labels;
        var name = node.Metadata?.Name ?? "";
        foreach (var term in terms)
        {
            if (TermMatches(term, labels, name))
            {
                return true;
            }
        }

        return false;
    }

    private static bool TermMatches(V1NodeSelectorTerm? term, IDictionary<string, string>? labels, string nodeName)
    {
        var expressions = term?.MatchExpressions;
        var fields = term?.MatchFields;
        if ((expressions is null || expressions.Count == 0) && (fields is null || fields.Count == 0))
        {
            return false;
        }

        if (expressions is not null)
        {
            foreach (var requirement in expressions)
            {
                var present = labels is not null && labels.TryGetValue(requirement.Key ?? "", out _);
                var value = present ? labels![requirement.Key!] : null;
                if (!RequirementMatches(requirement.OperatorProperty, requirement.Values, present, value))
                {
                    return false;
                }
            }
        }

        if (fields is not null)
        {
            foreach (var requirement in fields)
            {
                // metadata.name is the only node field the scheduler supports in matchFields.
                var supported = string.Equals(requirement.Key, "metadata.name", StringComparison.Ordinal);
                if (!supported || requirement.OperatorProperty is not ("In" or "NotIn"))
                {
                    return false;
                }

                if (!RequirementMatches(requirement.OperatorProperty, requirement.Values, present: true, nodeName))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static bool RequirementMatches(string? op, IList<string>? values, bool present, string? value)
    {
        switch (op)
        {
            case "In":
                return present && values is not null && values.Contains(value!, StringComparer.Ordinal);
            case "NotIn":
                return !present || values is null || !values.Contains(value!, StringComparer.Ordinal);
            case "Exists":
                return present;
            case "DoesNotExist":
                return !present;
            case "Gt":
            case "Lt":
                if (!present || values is not { Count: 1 }
                    || !long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var actual)
                    || !long.TryParse(values[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var bound))
                {
                    return false;
                }

                return op == "Gt" ? actual > bound : actual < bound;
            default:
                // An unknown operator is an invalid selector; the scheduler treats it as no match.
                return false;
        }
    }

    /// <summary>True when the node's <c>Ready</c> condition is <c>True</c>. A node without conditions is not Ready.</summary>
    public static bool IsReady(V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.Status?.Conditions is not { } conditions)
        {
            return false;
        }

        foreach (var c in conditions)
        {
            if (string.Equals(c.Type, "Ready", StringComparison.Ordinal))
            {
                return string.Equals(c.Status, "True", StringComparison.Ordinal);
            }
        }

        return false;
    }
}
