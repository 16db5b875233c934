using KServe.Node.Api.V1Alpha1;
using KServe.Node.CacheController.Controllers;
using KServe.Node.Runtime;

namespace KServe.Node.CacheController.Webhooks;

/// <summary>The validators' cluster reads: the informer caches when synced, else the API server.</summary>
internal sealed class ApiAdmissionLookups(ClusterState state, SharedInformerFactory informers) : IAdmissionLookups
{
    private readonly ResourceClient<LocalModelCache> _caches = informers.ClientFor<LocalModelCache>();
    private readonly ResourceClient<LocalModelNodeGroup> _groups = informers.ClientFor<LocalModelNodeGroup>();
    private readonly ResourceClient<InferenceServiceMetadata> _isvcs = informers.ClientFor<InferenceServiceMetadata>();
    private readonly ResourceClient<LlmInferenceServiceMetadata> _llmIsvcs = informers.ClientFor<LlmInferenceServiceMetadata>();

    public async Task<IReadOnlyList<(string Name, string? SourceModelUri)>> ListClusterCachesAsync(CancellationToken ct)
    {
        // A fresh list, not the informer: two caches created in quick succession must see each other.
        var list = await _caches.ListAsync(ct: ct).ConfigureAwait(false);
        return [.. list.Items.Select(c => (c.Metadata.Name, (string?)c.Spec?.SourceModelUri))];
    }

    public async Task<IDictionary<string, string>?> GetInferenceServiceLabelsAsync(string ns, string name, CancellationToken ct)
    {
        try
        {
            var isvc = await _isvcs.GetAsync(new ObjectKey(ns, name), ct).ConfigureAwait(false);
            return isvc is null ? null : isvc.Metadata.Labels ?? new Dictionary<string, string>();
        }
        catch (KubernetesApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    public async Task<IDictionary<string, string>?> GetLlmInferenceServiceLabelsAsync(string ns, string name, CancellationToken ct)
    {
        try
        {
            var isvc = await _llmIsvcs.GetAsync(new ObjectKey(ns, name), ct).ConfigureAwait(false);
            return isvc is null ? null : isvc.Metadata.Labels ?? new Dictionary<string, string>();
        }
        catch (KubernetesApiException e) when (e.IsNotFound)
        {
            // The kind itself is not served: nothing can use the cache through it.
            return null;
        }
    }

    public async Task<bool> NodeGroupExistsAsync(string name, CancellationToken ct)
    {
        if (state.Groups.HasSynced && state.Groups.Get(ObjectKey.Cluster(name)) is not null)
        {
            return true;
        }

        return await _groups.GetAsync(ObjectKey.Cluster(name), ct).ConfigureAwait(false) is not null;
    }
}
