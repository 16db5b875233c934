using System.Text.RegularExpressions;
using k8s.Models;
using KServe.Node.Api.V1Alpha1;

namespace KServe.Node.Api;

/// <summary>
/// Helpers for <c>status.conditions</c> lists (metav1.Condition): one entry per type, transition time
/// changed only when the status flips, message never null (the schema requires it).
/// </summary>
public static partial class Conditions
{
    /// <summary>Longest message the Kubernetes condition schema accepts.</summary>
    public const int MaxMessageLength = 32768;

    /// <summary>The condition of <paramref name="type"/>, or null.</summary>
    public static V1Condition? Find(IEnumerable<V1Condition>? conditions, string type) =>
        conditions?.FirstOrDefault(c => c is not null && string.Equals(c.Type, type, StringComparison.Ordinal));

    /// <summary>True when the condition of <paramref name="type"/> exists with status <c>True</c>.</summary>
    public static bool IsTrue(IEnumerable<V1Condition>? conditions, string type) =>
        Find(conditions, type)?.Status == ConditionStatus.True;

    /// <summary>
    /// Adds or updates the condition of <paramref name="type"/>. <c>lastTransitionTime</c> is set to
    /// <paramref name="now"/> only when the condition is new or its status changes. Returns true when
    /// anything changed (so callers write status only then).
    /// </summary>
    /// <exception cref="ArgumentException">Status is not True/False/Unknown, or reason is not CamelCase-like.</exception>
    public static bool Set(IList<V1Condition> conditions, string type, string status, string reason, string? message, long? observedGeneration, DateTime now)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        ArgumentException.ThrowIfNullOrEmpty(type);
        if (!ConditionStatus.All.Contains(status, StringComparer.Ordinal))
        {
            throw new ArgumentException($"condition status must be True, False or Unknown, not \"{status}\"", nameof(status));
        }

        if (reason is null || !ReasonPattern().IsMatch(reason))
        {
            throw new ArgumentException($"condition reason \"{reason}\" must match ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", nameof(reason));
        }

        message ??= "";
        if (message.Length > MaxMessageLength)
        {
            message = message[..MaxMessageLength];
        }

        now = now.Kind == DateTimeKind.Utc ? now : now.ToUniversalTime();
        // The API server keeps second precision; comparing at that precision avoids needless writes.
        now = new DateTime(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc);

        var existing = Find(conditions, type);
        if (existing is null)
        {
            conditions.Add(new V1Condition
            {
                Type = type,
                Status = status,
                Reason = reason,
                Message = message,
                ObservedGeneration = observedGeneration,
                LastTransitionTime = now,
            });
            return true;
        }

        var changed = false;
        if (existing.Status != status)
        {
            existing.Status = status;
            existing.LastTransitionTime = now;
            changed = true;
        }
        else if (existing.LastTransitionTime == default)
        {
            existing.LastTransitionTime = now;
            changed = true;
        }

        if (existing.Reason != reason)
        {
            existing.Reason = reason;
            changed = true;
        }

        if (existing.Message != message)
        {
            existing.Message = message;
            changed = true;
        }

        if (existing.ObservedGeneration != observedGeneration)
        {
            existing.ObservedGeneration = observedGeneration;
            changed = true;
        }

        return changed;
    }

    /// <summary>Removes the condition of <paramref name="type"/>; true when one was removed.</summary>
    public static bool Remove(IList<V1Condition> conditions, string type)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        var existing = Find(conditions, type);
        return existing is not null && conditions.Remove(existing);
    }

    [GeneratedRegex("^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", RegexOptions.CultureInvariant)]
    private static partial Regex ReasonPattern();
}
