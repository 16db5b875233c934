using System.Globalization;
using k8s.Models;

namespace KServe.Node.Api;

/// <summary>
/// Kubernetes node-selector semantics (<c>MatchNodeSelectorTerms</c>): the terms are ORed, the
/// requirements inside a term are ANDed. A null selector, an empty term list or an empty term matches no
/// node; a malformed requirement (no key, a value count its operator does not take, an unknown operator,
/// a <c>matchFields</c> key other than <c>metadata.name</c>) makes its term not match, as the scheduler
/// skips a term it cannot parse. Used to decide which nodes belong to a LocalModelNodeGroup (its PV
/// template's <c>nodeAffinity.required</c>, spec §1.4).
/// </summary>
public static class NodeSelectorMatcher
{
    /// <summary>
    /// True when <paramref name="node"/> satisfies the PV spec's <c>nodeAffinity.required</c>; a spec with no
    /// node affinity or no required selector matches no node.
    /// </summary>
    public static bool Matches(V1PersistentVolumeSpec? pvSpec, V1Node node) =>
        Matches(pvSpec?.NodeAffinity?.Required, node);

    /// <summary>True when <paramref name="node"/> satisfies <paramref name="selector"/>.</summary>
    public static bool Matches(V1NodeSelector? selector, V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return Matches(selector, node.Metadata?.Labels, node.Metadata?.Name ?? "");
    }

    /// <summary>True when a node with these labels and this name satisfies <paramref name="selector"/>.</summary>
    public static bool Matches(V1NodeSelector? selector, IDictionary<string, string>? labels, string nodeName)
    {
        if (selector?.NodeSelectorTerms is not { Count: > 0 } terms)
        {
            return false;
        }

        return terms.Any(t => TermMatches(t, labels, nodeName));
    }

    private static bool TermMatches(V1NodeSelectorTerm? term, IDictionary<string, string>? labels, string nodeName)
    {
        var expressions = term?.MatchExpressions ?? [];
        var fields = term?.MatchFields ?? [];
        if (expressions.Count == 0 && fields.Count == 0)
        {
            return false;
        }

        foreach (var r in expressions)
        {
            string? value = null;
            if (r is null || string.IsNullOrEmpty(r.Key))
            {
                return false;
            }

            var has = labels is not null && labels.TryGetValue(r.Key, out value);
            if (!RequirementMatches(r.OperatorProperty, r.Values, has, value))
            {
                return false;
            }
        }

        foreach (var r in fields)
        {
            // Kubernetes supports only metadata.name here, with In and NotIn and exactly one value.
            if (r is null || r.Key != "metadata.name" || r.OperatorProperty is not ("In" or "NotIn")
                || r.Values is not { Count: 1 } || !RequirementMatches(r.OperatorProperty, r.Values, true, nodeName))
            {
                return false;
            }
        }

        return true;
    }

    private static bool RequirementMatches(string? op, IList<string>? values, bool has, string? value)
    {
        values ??= [];
        switch (op)
        {
            case "In":
                return values.Count > 0 && has && values.Contains(value!, StringComparer.Ordinal);
            case "NotIn":
                return values.Count > 0 && (!has || !values.Contains(value!, StringComparer.Ordinal));
            case "Exists":
                return values.Count == 0 && has;
            case "DoesNotExist":
                return values.Count == 0 && !has;
            case "Gt":
            case "Lt":
                if (values.Count != 1 || !has
                    || !long.TryParse(values[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var bound)
                    || !long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var actual))
                {
                    return false;
                }

                return op == "Gt" ? actual > bound : actual < bound;
            default:
                return false;
        }
    }
}

/// <summary>Node readiness as the LocalModel controller sees it (spec §2.2).</summary>
public static class NodeReadiness
{
    /// <summary>
    /// True when the node's <c>Ready</c> condition is <c>True</c>; a node without one is not ready. Like
    /// Kubernetes' <c>GetNodeCondition</c>, the first condition of the type decides.
    /// </summary>
    public static bool IsReady(V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.Status?.Conditions?.FirstOrDefault(c => c?.Type == "Ready")?.Status == "True";
    }
}
