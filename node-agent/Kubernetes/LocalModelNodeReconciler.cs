using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using KServe.Node.Agent.Engine;
using KServe.Node.Agent.Sources;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Runtime;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Agent.Kubernetes;

/// <summary>Who this agent is and where credentials live (from the downward API and <c>inferenceservice-config</c>).</summary>
internal sealed class AgentNodeSettings
{
    public string NodeName { get; init; } = "";
    public string PodNamespace { get; init; } = "kserve";
    public string JobNamespace { get; set; } = Api.KServeNames.DefaultJobNamespace;
    public string StorageSpecSecretName { get; set; } = "storage-config";
    public TimeSpan Frequency { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The informer of this node's LocalModelNode only: the reconciler and the status writer read it from its cache.</summary>
    public InformerOptions LocalModelNodeInformer => new() { FieldSelector = $"metadata.name={NodeName}" };
}

/// <summary>
/// Reconciles this node's <c>LocalModelNode</c> (the informer watches only that name):
/// 1. read <c>inferenceservice-config</c> (job namespace, frequency, storage-spec secret name);
/// 2. read the object from the informer's cache; absent is not an empty node: the engine is told that nothing is desired, which keeps
///    every model for the grace period (a LocalModelNode recreated meanwhile loses nothing);
/// 3. resolve each entry's credentials and hand the desired models to the engine, which downloads,
///    deletes unlisted folders and re-verifies the disk;
/// 4. apply the node group's <c>storageLimit</c>;
/// 5. wake the status writer; requeue after the configured frequency.
/// </summary>
internal sealed partial class LocalModelNodeReconciler(
    IKubernetes client, SharedInformerFactory informers, AgentNodeSettings node, CacheEngine engine,
    CredentialResolver credentials, NodeStatusWriter writer, ILogger<LocalModelNodeReconciler> logger) : IReconciler
{
    public async Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        if (key.Name != node.NodeName)
        {
            return ReconcileResult.Done;
        }
        await ReadConfigAsync(ct).ConfigureAwait(false);
        // From the informer's cache (it woke us, so it holds the latest): no GET per pass.
        var lmn = informers.Get<LocalModelNode>(node.LocalModelNodeInformer).Get(key);
        if (lmn is null)
        {
            LogMissing(logger, node.NodeName);
            engine.SetDesired([]);
            return ReconcileResult.Done;
        }
        var baseSettings = SourceSettings.FromEnvironment();
        var specs = new List<ModelSpec>();
        foreach (var entry in lmn.Spec.LocalModels)
        {
            if (string.IsNullOrWhiteSpace(entry.SourceModelUri) || string.IsNullOrWhiteSpace(entry.ModelName))
            {
                continue;
            }
            var settings = await credentials.ResolveAsync(entry, baseSettings, ct).ConfigureAwait(false);
            var p = entry.Storage?.Parameters;
            var filter = new FileFilter(p?.Lookup("allowPatterns"), p?.Lookup("ignorePatterns"));
            specs.Add(new ModelSpec(entry.StatusKey, entry.SourceModelUri, filter, settings));
        }
        engine.StorageLimitBytes = await StorageLimitAsync(lmn, ct).ConfigureAwait(false);
        engine.SetDesired(specs);
        writer.Kick();
        return ReconcileResult.RequeueAfter(node.Frequency);
    }

    private async Task<long?> StorageLimitAsync(LocalModelNode lmn, CancellationToken ct)
    {
        long? limit = null;
        foreach (var group in lmn.Spec.LocalModels.Select(m => m.NodeGroup).Where(g => !string.IsNullOrEmpty(g)).Distinct())
        {
            var g = await informers.ClientFor<LocalModelNodeGroup>().GetAsync(new ObjectKey(null, group!), ct).ConfigureAwait(false);
            if (g?.Spec.StorageLimit is { } q)
            {
                var bytes = (long)q.ToDecimal();
                limit = limit is { } l ? Math.Min(l, bytes) : bytes;
            }
        }
        return limit;
    }

    private async Task ReadConfigAsync(CancellationToken ct)
    {
        V1ConfigMap cm;
        try
        {
            cm = await client.CoreV1.ReadNamespacedConfigMapAsync("inferenceservice-config", node.PodNamespace, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (HttpOperationException)
        {
            return;
        }
        try
        {
            if (cm.Data?.Lookup("localModel") is { } lm)
            {
                var root = JsonDocument.Parse(lm).RootElement;
                if (root.TryGetProperty("jobNamespace", out var ns) && ns.GetString() is { Length: > 0 } jn)
                {
                    node.JobNamespace = jn;
                }
                if (root.TryGetProperty("reconcilationFrequencyInSecs", out var f) && f.TryGetInt64(out var secs) && secs > 0)
                {
                    node.Frequency = TimeSpan.FromSeconds(secs);
                }
            }
            if (cm.Data?.Lookup("credentials") is { } cr
                && JsonDocument.Parse(cr).RootElement.TryGetProperty("storageSpecSecretName", out var s) && s.GetString() is { Length: > 0 } name)
            {
                node.StorageSpecSecretName = name;
            }
        }
        catch (JsonException e)
        {
            LogConfigInvalid(logger, e.Message);
        }
    }

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "LocalModelNode/{Node} does not exist; its models are kept for the grace period")]
    private static partial void LogMissing(ILogger logger, string node);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "inferenceservice-config is not valid JSON ({Error}); defaults are used")]
    private static partial void LogConfigInvalid(ILogger logger, string error);
}
