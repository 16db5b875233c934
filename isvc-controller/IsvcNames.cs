using KServe.Node.Api;
using KServe.Node.Api.V1Beta1;

namespace KServe.Node.IsvcController;

/// <summary>
/// KServe's names that an InferenceService controller must keep exactly, so that KServe users, dashboards and the
/// cache-controller find what they expect (spec §4.2, §9).
/// </summary>
internal static class IsvcNames
{
    public const string IsvcApiVersion = InferenceService.KubeApiVersion;
    public const string IsvcKind = InferenceService.KubeKind;

    // Labels on every child.
    public const string IsvcLabel = KServeLabels.InferenceService;
    public const string ComponentLabel = KServeLabels.Component;
    public const string PredictorComponent = "predictor";
    public const string AppLabel = "app";

    // User annotations.
    public const string DeploymentModeAnnotation = KServeAnnotations.DeploymentMode;
    public const string AutoscalerClassAnnotation = KServeAnnotations.AutoscalerClass;
    public const string MetricsAnnotation = "serving.kserve.io/metrics";
    public const string TargetUtilizationAnnotation = "serving.kserve.io/targetUtilizationPercentage";
    public const string NodeGroupAnnotation = KServeAnnotations.NodeGroup;
    public const string DisableLocalModelAnnotation = KServeAnnotations.DisableLocalModel;
    public const string StopAnnotation = KServeAnnotations.Stop;
    public const string ReadOnlyModelAnnotation = KServeAnnotations.StorageReadOnly;
    public const string VisibilityLabel = KServeLabels.Visibility;
    public const string ClusterLocalVisibility = KServeLabels.VisibilityClusterLocal;

    // Cache bookkeeping keys set by the controller (KServe's webhook sets them in KServe itself).
    public const string LocalModelLabel = KServeLabels.LocalModel;
    public const string LocalModelNamespaceLabel = KServeLabels.LocalModelNamespace;
    public const string LocalModelSourceUriAnnotation = KServeAnnotations.LocalModelSourceUri;
    public const string LocalModelPvcNameAnnotation = KServeAnnotations.LocalModelPvcName;
    public const string LocalModelPrefix = KServeLabels.LocalModelPrefix;

    // Pod layout.
    public const string ContainerName = KServeNames.InferenceServiceContainer;
    public const string StorageInitializerName = "storage-initializer";
    public const string ProvisionVolume = "kserve-provision-location";
    public const string PvcSourceVolume = KServeNames.PvcSourceVolume;
    public const string ModelMountPath = KServeNames.ModelMountPath;
    public const string ShmVolume = "devshm";

    // Metrics scrape annotations of KServe's runtimes.
    public const string PrometheusKServePort = "prometheus.kserve.io/port";
    public const string PrometheusKServePath = "prometheus.kserve.io/path";

    // Our own additions (never replacing KServe's).
    public const string PlacementLabelPrefix = PlacementLabels.Prefix;
    public const string Finalizer = "isvc.kserve-node.io/finalizer";

    /// <summary>The Node label the cache-controller sets on nodes holding the model with <paramref name="storageKey"/>.</summary>
    public static string PlacementLabel(string storageKey) => PlacementLabels.ForStorageKey(storageKey);
}
