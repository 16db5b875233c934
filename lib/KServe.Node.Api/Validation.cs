using k8s.Models;

namespace KServe.Node.Api;

/// <summary>One validation problem: the JSON path of the field and what is wrong with it.</summary>
/// <param name="Path">JSON field path such as <c>spec.nodeGroups</c> or <c>status.nodeStatus[node-1]</c>.</param>
/// <param name="Message">What is wrong, e.g. <c>must contain at least one node group</c>.</param>
public sealed record ValidationError(string Path, string Message)
{
    /// <summary><c>{path}: {message}</c>.</summary>
    public override string ToString() => $"{Path}: {Message}";
}

/// <summary>Thrown when an object fails validation; <see cref="Errors"/> lists every problem.</summary>
public sealed class ApiValidationException : Exception
{
    public ApiValidationException()
        : this([])
    {
    }

    public ApiValidationException(string message)
        : base(message)
    {
        Errors = [];
    }

    public ApiValidationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [];
    }

    public ApiValidationException(IReadOnlyList<ValidationError> errors)
        : base(errors is null || errors.Count == 0 ? "invalid object" : string.Join("; ", errors))
    {
        Errors = errors ?? [];
    }

    /// <summary>The problems found.</summary>
    public IReadOnlyList<ValidationError> Errors { get; }
}

/// <summary>Extensions over validation results.</summary>
public static class ValidationExtensions
{
    /// <summary>Throws <see cref="ApiValidationException"/> when <paramref name="errors"/> is not empty.</summary>
    public static void ThrowIfInvalid(this IReadOnlyList<ValidationError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (errors.Count > 0)
        {
            throw new ApiValidationException(errors);
        }
    }
}

/// <summary>Collects validation errors with the helpers the CRD types share.</summary>
internal sealed class ValidationCollector
{
    private readonly List<ValidationError> errors = [];

    public IReadOnlyList<ValidationError> Errors => errors;

    public void Add(string path, string message) => errors.Add(new ValidationError(path, message));

    public void Required(string path, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            Add(path, "required");
        }
    }

    /// <summary>A quantity that must be present (when <paramref name="required"/>) and not negative.</summary>
    public void NonNegativeQuantity(string path, ResourceQuantity? value, bool required)
    {
        if (value is null)
        {
            if (required)
            {
                Add(path, "required");
            }

            return;
        }

        if (value.ToDecimal() < 0)
        {
            Add(path, "must not be negative");
        }
    }

    public void OneOf(string path, string? value, IReadOnlyList<string> allowed)
    {
        if (value is not null && !allowed.Contains(value, StringComparer.Ordinal))
        {
            Add(path, $"unsupported value \"{value}\" (supported: {string.Join(", ", allowed.Select(a => a.Length == 0 ? "\"\"" : a))})");
        }
    }

    public void NonNegative(string path, long? value)
    {
        if (value < 0)
        {
            Add(path, "must not be negative");
        }
    }

    public void StorageUri(string path, string? uri, bool required)
    {
        if (string.IsNullOrEmpty(uri))
        {
            if (required)
            {
                Add(path, "required");
            }

            return;
        }

        if (!Api.StorageUri.TryParse(uri, out _, out var error))
        {
            Add(path, error);
        }
    }
}
