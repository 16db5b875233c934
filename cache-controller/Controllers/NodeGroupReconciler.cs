using k8s.Models;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.CacheController.Model;
using KServe.Node.Runtime;

namespace KServe.Node.CacheController.Controllers;

/// <summary>
/// Writes a node group's logical <c>status.used</c> and <c>status.available</c> (declared by KServe, written by nobody
/// there, #6137). The limit is per node, so <c>used</c> is the fullest member node's sum of placed model sizes and
/// <c>available</c> what that node has left: the room a new model can count on across the group.
/// </summary>
internal sealed class NodeGroupReconciler(ClusterState state, SharedInformerFactory informers) : IReconciler
{
    private readonly ResourceClient<LocalModelNodeGroup> _client = informers.ClientFor<LocalModelNodeGroup>();

    public async Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var group = state.Groups.Get(key);
        if (group is null)
        {
            return ReconcileResult.Done;
        }

        long used = 0;
        foreach (var node in state.MembersOf(key.Name))
        {
            used = Math.Max(used, state.UsageOf(node));
        }

        var limit = CacheObject.Bytes(group.Spec?.StorageLimit);
        var usedText = CacheStatusCalculator.Quantity(used);
        var availableText = limit is { } l ? CacheStatusCalculator.Quantity(Math.Max(0, l - used)) : null;
        if (group.Status?.Used?.ToString() == usedText && group.Status?.Available?.ToString() == availableText)
        {
            return ReconcileResult.Done;
        }

        bool Set(LocalModelNodeGroup g)
        {
            g.Status ??= new LocalModelNodeGroupStatus();
            g.Status.Used = new ResourceQuantity(usedText);
            g.Status.Available = availableText is null ? null : new ResourceQuantity(availableText);
            return true;
        }

        // KServe's CRD has no status subresource for node groups (the /status write then answers 404 or 405): status is
        // then part of the object.
        LocalModelNodeGroup? written = null;
        try
        {
            written = await Updates.UpdateAsync(_client, group, Set, status: true, ct).ConfigureAwait(false);
        }
        catch (KubernetesApiException e) when (e.StatusCode == System.Net.HttpStatusCode.MethodNotAllowed)
        {
        }

        if (written is null)
        {
            await Updates.UpdateAsync(_client, group, Set, status: false, ct).ConfigureAwait(false);
        }

        return ReconcileResult.Done;
    }
}
