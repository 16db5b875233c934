using System.Text.Json;

namespace KServe.Node.CacheController.Webhooks;

/// <summary>The fields of a cache object the validators read, taken straight from the admission JSON.</summary>
internal sealed record CacheView(string Name, string? Namespace, bool Deleting, string? SourceModelUri,
    IReadOnlyList<string> NodeGroups, IReadOnlyList<(string Namespace, string Name)> InferenceServices,
    IReadOnlyList<(string Namespace, string Name)> LlmInferenceServices)
{
    public static bool TryRead(JsonElement? element, string expectedKind, out CacheView? view, out string? error)
    {
        view = null;
        if (element is not { ValueKind: JsonValueKind.Object } e)
        {
            error = $"expected a {expectedKind} object, got {element?.ValueKind.ToString() ?? "nothing"}";
            return false;
        }

        var kind = Str(e, "kind");
        if (kind is not null && !string.Equals(kind, expectedKind, StringComparison.Ordinal))
        {
            error = $"expected a {expectedKind} object, got {kind}";
            return false;
        }

        if (!e.TryGetProperty("metadata", out var meta) || meta.ValueKind != JsonValueKind.Object || Str(meta, "name") is not { Length: > 0 } name)
        {
            error = $"the {expectedKind} object has no metadata.name";
            return false;
        }

        var spec = e.TryGetProperty("spec", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
        var status = e.TryGetProperty("status", out var st) && st.ValueKind == JsonValueKind.Object ? st : default;
        var groups = new List<string>();
        if (spec.ValueKind == JsonValueKind.Object && spec.TryGetProperty("nodeGroups", out var ng) && ng.ValueKind == JsonValueKind.Array)
        {
            foreach (var g in ng.EnumerateArray())
            {
                if (g.ValueKind == JsonValueKind.String && g.GetString() is { Length: > 0 } gs)
                {
                    groups.Add(gs);
                }
            }
        }

        view = new CacheView(
            name,
            Str(meta, "namespace"),
            Str(meta, "deletionTimestamp") is not null,
            spec.ValueKind == JsonValueKind.Object ? Str(spec, "sourceModelUri") : null,
            groups,
            Refs(status, "inferenceServices"),
            Refs(status, "llmInferenceServices"));
        error = null;
        return true;
    }

    private static string? Str(JsonElement e, string property) =>
        e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static List<(string, string)> Refs(JsonElement status, string property)
    {
        var list = new List<(string, string)>();
        if (status.ValueKind == JsonValueKind.Object && status.TryGetProperty(property, out var arr) && arr.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in arr.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.Object && Str(item, "name") is { Length: > 0 } n)
                {
                    list.Add((Str(item, "namespace") ?? "", n));
                }
            }
        }

        return list;
    }
}

/// <summary>What the validators look up in the cluster.</summary>
internal interface IAdmissionLookups
{
    /// <summary>All cluster caches: name and <c>spec.sourceModelUri</c>.</summary>
    Task<IReadOnlyList<(string Name, string? SourceModelUri)>> ListClusterCachesAsync(CancellationToken ct);

    /// <summary>An InferenceService's labels; null when it does not exist. Other failures throw.</summary>
    Task<IDictionary<string, string>?> GetInferenceServiceLabelsAsync(string ns, string name, CancellationToken ct);

    /// <summary>An LLMInferenceService's labels; null when it (or its kind) does not exist. Other failures throw.</summary>
    Task<IDictionary<string, string>?> GetLlmInferenceServiceLabelsAsync(string ns, string name, CancellationToken ct);

    /// <summary>True when the LocalModelNodeGroup exists.</summary>
    Task<bool> NodeGroupExistsAsync(string name, CancellationToken ct);
}

/// <summary>
/// The validating webhooks KServe ships for caches (spec §1.8), with KServe's messages.
/// One deliberate difference: an InferenceService listed in the cache's status that no longer exists does not
/// block deletion (KServe refuses with the NotFound error until the controller catches up, which is why its
/// end-to-end tests sleep before deleting a cache).
/// </summary>
internal sealed class CacheValidator(IAdmissionLookups lookups)
{
    public const string LocalModelLabel = Api.KServeLabels.LocalModel;
    public const string LocalModelNamespaceLabel = Api.KServeLabels.LocalModelNamespace;

    public const string ClusterCacheKind = Api.V1Alpha1.LocalModelCache.KubeKind;
    public const string NamespaceCacheKind = Api.V1Alpha1.LocalModelNamespaceCache.KubeKind;

    public async Task<AdmissionDecision> ValidateClusterCacheAsync(AdmissionRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        switch (request.Operation)
        {
            case "CREATE":
            case "UPDATE":
                {
                    if (!CacheView.TryRead(request.Object, ClusterCacheKind, out var cache, out var error))
                    {
                        return AdmissionDecision.BadRequest(error!);
                    }

                    if (request.Operation == "UPDATE" && cache!.Deleting)
                    {
                        return AdmissionDecision.Allow();
                    }

                    foreach (var (name, uri) in await lookups.ListClusterCachesAsync(ct).ConfigureAwait(false))
                    {
                        if (!string.Equals(name, cache!.Name, StringComparison.Ordinal)
                            && string.Equals(uri, cache.SourceModelUri, StringComparison.Ordinal))
                        {
                            return AdmissionDecision.Deny($"LocalModelCache {name} has the same StorageURI {uri}");
                        }
                    }

                    return AdmissionDecision.Allow();
                }

            case "DELETE":
                {
                    if (!CacheView.TryRead(request.OldObject, ClusterCacheKind, out var cache, out var error))
                    {
                        return AdmissionDecision.BadRequest(error!);
                    }

                    return await CheckInUseAsync(cache!, $"LocalModelCache {cache!.Name}",
                        labels => Has(labels, LocalModelLabel, cache.Name), qualify: false, ct).ConfigureAwait(false);
                }

            default:
                return AdmissionDecision.Allow();
        }
    }

    public async Task<AdmissionDecision> ValidateNamespaceCacheAsync(AdmissionRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        switch (request.Operation)
        {
            case "CREATE":
            case "UPDATE":
                {
                    if (!CacheView.TryRead(request.Object, NamespaceCacheKind, out var cache, out var error))
                    {
                        return AdmissionDecision.BadRequest(error!);
                    }

                    if (cache!.Deleting)
                    {
                        return AdmissionDecision.Allow();
                    }

                    foreach (var group in cache.NodeGroups)
                    {
                        if (!await lookups.NodeGroupExistsAsync(group, ct).ConfigureAwait(false))
                        {
                            return AdmissionDecision.Deny($"NodeGroup {group} not found: localmodelnodegroups.serving.kserve.io \"{group}\" not found");
                        }
                    }

                    return AdmissionDecision.Allow();
                }

            case "DELETE":
                {
                    if (!CacheView.TryRead(request.OldObject, NamespaceCacheKind, out var cache, out var error))
                    {
                        return AdmissionDecision.BadRequest(error!);
                    }

                    var ns = cache!.Namespace ?? request.Namespace ?? "";
                    return await CheckInUseAsync(cache, $"LocalModelNamespaceCache {ns}/{cache.Name}",
                        labels => Has(labels, LocalModelLabel, cache.Name) && Has(labels, LocalModelNamespaceLabel, ns),
                        qualify: true, ct).ConfigureAwait(false);
                }

            default:
                return AdmissionDecision.Allow();
        }
    }

    private async Task<AdmissionDecision> CheckInUseAsync(CacheView cache, string what,
        Func<IDictionary<string, string>, bool> usesCache, bool qualify, CancellationToken ct)
    {
        foreach (var (ns, name) in cache.InferenceServices)
        {
            IDictionary<string, string>? labels;
            try
            {
                labels = await lookups.GetInferenceServiceLabelsAsync(ns, name, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return AdmissionDecision.Error($"checking InferenceService {ns}/{name}: {ex.Message}");
            }

            if (labels is not null && usesCache(labels))
            {
                return AdmissionDecision.Deny($"{what} is being used by InferenceService {(qualify ? $"{ns}/{name}" : name)}");
            }
        }

        foreach (var (ns, name) in cache.LlmInferenceServices)
        {
            IDictionary<string, string>? labels;
            try
            {
                labels = await lookups.GetLlmInferenceServiceLabelsAsync(ns, name, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return AdmissionDecision.Error($"checking LLMInferenceService {ns}/{name}: {ex.Message}");
            }

            if (labels is not null && usesCache(labels))
            {
                return AdmissionDecision.Deny($"{what} is being used by LLMInferenceService {(qualify ? $"{ns}/{name}" : name)}");
            }
        }

        return AdmissionDecision.Allow();
    }

    private static bool Has(IDictionary<string, string> labels, string key, string value) =>
        labels.TryGetValue(key, out var v) && string.Equals(v, value, StringComparison.Ordinal);
}
