using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using k8s.Models;

namespace KServe.Node.Api.Serialization;

/// <summary>
/// JSON converter for <see cref="ResourceQuantity"/> fields of the CRD types. It differs from
/// KubernetesClient's own converter in three ways: a malformed quantity becomes a
/// <see cref="JsonException"/> (so the error carries the field path instead of a bare FormatException),
/// numbers are parsed from their exact text, and negative quantities are written correctly
/// (KubernetesClient 21 canonicalises <c>-1</c> to <c>-0.000000000000000001E</c>).
/// </summary>
public sealed class QuantityConverter : JsonConverter<ResourceQuantity>
{
    public override ResourceQuantity? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string text;
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.Number:
                text = reader.HasValueSequence ? Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence)) : Encoding.UTF8.GetString(reader.ValueSpan);
                break;
            case JsonTokenType.String:
                text = reader.GetString()!;
                break;
            default:
                throw new JsonException($"expected a quantity (string or integer), got {Describe(reader.TokenType)}");
        }

        return Parse(text) ?? throw new JsonException($"\"{text}\" is not a valid quantity (e.g. 500Gi, 251Mi, 10G)");
    }

    public override void Write(Utf8JsonWriter writer, ResourceQuantity value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(value);
        writer.WriteStringValue(Format(value));
    }

    /// <summary>Parses a quantity string, or returns null when it is malformed.</summary>
    public static ResourceQuantity? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || !QuantityPattern.IsMatch(text.Trim()))
        {
            return null;
        }

        try
        {
            return new ResourceQuantity(text);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            return null;
        }
    }

    /// <summary>The canonical string of a quantity, correct for negative values too.</summary>
    public static string Format(ResourceQuantity value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var amount = value.ToDecimal();
        if (amount >= 0)
        {
            return value.ToString();
        }

        var positive = new ResourceQuantity(-amount, 0, value.Format);
        return "-" + positive.ToString();
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        _ => token.ToString().ToLower(CultureInfo.InvariantCulture),
    };

    /// <summary>The Kubernetes quantity grammar (apimachinery), the same pattern the CRDs carry.</summary>
    internal static readonly System.Text.RegularExpressions.Regex QuantityPattern = new(
        SchemaPatterns.Quantity, System.Text.RegularExpressions.RegexOptions.CultureInvariant);
}

/// <summary>Regular expressions shared by the CRD schemas and the C# validation.</summary>
public static class SchemaPatterns
{
    /// <summary>Kubernetes quantity pattern (signed), as in KServe's CRDs.</summary>
    public const string Quantity =
        @"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

    /// <summary>Quantity pattern that refuses a minus sign: sizes and limits.</summary>
    public const string NonNegativeQuantity =
        @"^(\+)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";
}
