namespace KServe.Node.Api;

/// <summary>API group and versions of the KServe resources this project reads and writes.</summary>
public static class KServeApi
{
    /// <summary>The API group of every KServe resource: <c>serving.kserve.io</c>.</summary>
    public const string Group = "serving.kserve.io";

    /// <summary>Version of the LocalModel* resources.</summary>
    public const string V1Alpha1 = "v1alpha1";

    /// <summary>Version of InferenceService.</summary>
    public const string V1Beta1 = "v1beta1";

    /// <summary><c>serving.kserve.io/v1alpha1</c>.</summary>
    public const string V1Alpha1ApiVersion = Group + "/" + V1Alpha1;

    /// <summary><c>serving.kserve.io/v1beta1</c>.</summary>
    public const string V1Beta1ApiVersion = Group + "/" + V1Beta1;
}
