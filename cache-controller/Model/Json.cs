using k8s;

namespace KServe.Node.CacheController.Model;

/// <summary>JSON text of API values for equality checks (KubernetesJson.Serialize does not take null).</summary>
internal static class Json
{
    public static string Of(object? value) => value is null ? "null" : KubernetesJson.Serialize(value);

    public static bool Same(object? a, object? b) => string.Equals(Of(a), Of(b), StringComparison.Ordinal);
}
