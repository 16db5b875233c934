namespace KServe.Node.Api;

/// <summary>Label keys KServe uses for model caching (spec §4.2, §2.2, §3.4).</summary>
public static class KServeLabels
{
    /// <summary>Set on an InferenceService by admission: the name of the cache it uses.</summary>
    public const string LocalModel = "internal.serving.kserve.io/localmodel";

    /// <summary>Set on an InferenceService by admission: the namespace of the namespace cache it uses.</summary>
    public const string LocalModelNamespace = "internal.serving.kserve.io/localmodel-namespace";

    /// <summary>Prefix of every internal localmodel label and annotation (propagated to workloads).</summary>
    public const string LocalModelPrefix = "internal.serving.kserve.io/localmodel";

    /// <summary>Label on predictor workloads and pods naming their InferenceService.</summary>
    public const string InferenceService = "serving.kserve.io/inferenceservice";

    /// <summary>Label on predictor workloads naming the component (<c>predictor</c>).</summary>
    public const string Component = "component";

    /// <summary>Label <c>networking.kserve.io/visibility</c>; value <c>cluster-local</c> suppresses external routes.</summary>
    public const string Visibility = "networking.kserve.io/visibility";

    /// <summary>Value of <see cref="Visibility"/> that keeps an InferenceService cluster-local.</summary>
    public const string VisibilityClusterLocal = "cluster-local";

    /// <summary>Download Job label: the cache name (<c>LocalModelInfo.modelName</c>).</summary>
    public const string JobModel = "model";

    /// <summary>Download Job label: the node name.</summary>
    public const string JobNode = "node";

    /// <summary>Download Job label: the cache namespace (namespace caches only).</summary>
    public const string JobModelNamespace = "modelNamespace";

    /// <summary>Node label the kustomize agent DaemonSet selects on (<c>kserve/localmodel: worker</c>).</summary>
    public const string AgentNodeSelector = "kserve/localmodel";

    /// <summary>Value of <see cref="AgentNodeSelector"/>.</summary>
    public const string AgentNodeSelectorValue = "worker";

    /// <summary>Well-known node label holding the node's host name (download Job nodeSelector).</summary>
    public const string Hostname = "kubernetes.io/hostname";
}

/// <summary>Annotation keys KServe uses for model caching and InferenceServices (spec §4.2, §9.1).</summary>
public static class KServeAnnotations
{
    /// <summary>User annotation: its presence disables caching for an InferenceService.</summary>
    public const string DisableLocalModel = "serving.kserve.io/disable-localmodel";

    /// <summary>User annotation: the LocalModelNodeGroup an InferenceService wants.</summary>
    public const string NodeGroup = "serving.kserve.io/nodegroup";

    /// <summary>Set by admission: the matched cache's <c>sourceModelUri</c>.</summary>
    public const string LocalModelSourceUri = "internal.serving.kserve.io/localmodel-sourceuri";

    /// <summary>Set by admission: the serving PVC name <c>{cache}-{group}</c>.</summary>
    public const string LocalModelPvcName = "internal.serving.kserve.io/localmodel-pvc-name";

    /// <summary>Set on workloads and pods: the predictor storageUri that triggers the pod mutator.</summary>
    public const string StorageInitializerSourceUri = "internal.serving.kserve.io/storage-initializer-sourceuri";

    /// <summary>User annotation: <c>"false"</c> mounts the model read-write (default read-only).</summary>
    public const string StorageReadOnly = "storage.kserve.io/readonly";

    /// <summary>InferenceService deployment mode (<see cref="V1Beta1.DeploymentMode"/>).</summary>
    public const string DeploymentMode = "serving.kserve.io/deploymentMode";

    /// <summary>InferenceService autoscaler class (<see cref="V1Beta1.AutoscalerClass"/>).</summary>
    public const string AutoscalerClass = "serving.kserve.io/autoscalerClass";

    /// <summary><c>"true"</c> stops an InferenceService.</summary>
    public const string Stop = "serving.kserve.io/stop";

    /// <summary>Selects a single storage secret for an InferenceService.</summary>
    public const string StorageSecretName = "serving.kserve.io/storageSecretName";
}

/// <summary>Finalizer names (spec §1.2, §1.3, §10 item 6).</summary>
public static class KServeFinalizers
{
    /// <summary>Finalizer of a cluster-scoped <c>LocalModelCache</c>.</summary>
    public const string LocalModelCache = "localmodel.kserve.io/finalizer";

    /// <summary>Finalizer of a <c>LocalModelNamespaceCache</c>.</summary>
    public const string LocalModelNamespaceCache = "localmodelnamespacecache.kserve.io/finalizer";
}

/// <summary>
/// Node labels through which InferenceService pods are placed on nodes that hold a model. Only the
/// cache-controller writes them; the isvc-controller requires them through node affinity.
/// </summary>
public static class PlacementLabels
{
    /// <summary>Prefix of the placement label; the name part is the storage key.</summary>
    public const string Prefix = "model.kserve-node.io/";

    /// <summary>Value of a placement label.</summary>
    public const string Value = "true";

    /// <summary>Returns <c>model.kserve-node.io/{storageKey}</c>.</summary>
    /// <exception cref="ArgumentException">The key is not a 16-character lower-case hex storage key.</exception>
    public static string ForStorageKey(string storageKey)
    {
        if (!StorageKey.IsValid(storageKey))
        {
            throw new ArgumentException($"\"{storageKey}\" is not a storage key (16 lower-case hex characters)", nameof(storageKey));
        }

        return Prefix + storageKey;
    }

    /// <summary>Returns the placement label for the model at <paramref name="sourceModelUri"/>.</summary>
    public static string ForUri(string sourceModelUri) => Prefix + StorageKey.Compute(sourceModelUri);

    /// <summary>Extracts the storage key from a placement label key, or null when it is not one.</summary>
    public static string? TryGetStorageKey(string labelKey)
    {
        ArgumentNullException.ThrowIfNull(labelKey);
        if (!labelKey.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var key = labelKey[Prefix.Length..];
        return StorageKey.IsValid(key) ? key : null;
    }
}

/// <summary>Fixed object and path names from the spec (§2.6, §3.4, §4.3).</summary>
public static class KServeNames
{
    /// <summary>Default namespace of download Jobs, download PVCs and credential lookups.</summary>
    public const string DefaultJobNamespace = "kserve-localmodel-jobs";

    /// <summary>Mount path of the model in serving pods and download Jobs.</summary>
    public const string ModelMountPath = "/mnt/models";

    /// <summary>Name of the PVC volume in download Jobs and serving pods.</summary>
    public const string PvcSourceVolume = "kserve-pvc-source";

    /// <summary>Container name of KServe's download Job.</summary>
    public const string DownloadContainer = "kserve-localmodel-download";

    /// <summary>Name of the model server container in predictor pods.</summary>
    public const string InferenceServiceContainer = "kserve-container";

    /// <summary>Folder under the cache root that holds one folder per storage key.</summary>
    public const string ModelsFolder = "models";

    /// <summary>ConfigMap holding KServe's configuration (key <c>localModel</c>).</summary>
    public const string InferenceServiceConfigMap = "inferenceservice-config";

    /// <summary>Key of the local-model configuration inside <see cref="InferenceServiceConfigMap"/>.</summary>
    public const string LocalModelConfigKey = "localModel";

    /// <summary>Runtime name that makes an InferenceService ours.</summary>
    public const string LlmRuntime = "kserve-node-llm";

    /// <summary>Model format that makes an InferenceService ours.</summary>
    public const string GgufModelFormat = "gguf";

    /// <summary>Download PV name of a cluster cache: <c>{cache}-{group}-download</c>.</summary>
    public static string DownloadPv(string cache, string group) => $"{cache}-{group}-download";

    /// <summary>Download PVC name (in the job namespace) of a cluster cache: <c>{cache}-{group}</c>.</summary>
    public static string DownloadPvc(string cache, string group) => $"{cache}-{group}";

    /// <summary>Download PV and PVC name of a namespace cache: <c>{cache}-{group}-{ns}-download</c>.</summary>
    public static string NamespaceDownloadVolume(string cache, string group, string cacheNamespace) =>
        $"{cache}-{group}-{cacheNamespace}-download";

    /// <summary>Serving PV name: <c>{cache}-{group}-{ns}</c>.</summary>
    public static string ServingPv(string cache, string group, string consumerNamespace) => $"{cache}-{group}-{consumerNamespace}";

    /// <summary>Serving PVC name (in the consumer namespace): <c>{cache}-{group}</c>.</summary>
    public static string ServingPvc(string cache, string group) => $"{cache}-{group}";

    /// <summary>The Job/serving subPath of a model folder: <c>models/{storageKey}</c>.</summary>
    public static string ModelSubPath(string storageKey) => $"{ModelsFolder}/{storageKey}";
}
