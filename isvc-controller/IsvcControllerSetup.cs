using k8s.Models;
using KServe.Node.Api;
using KServe.Node.Api.V1Alpha1;
using KServe.Node.Api.V1Beta1;
using KServe.Node.IsvcController.Placement;
using KServe.Node.IsvcController.Resources;
using KServe.Node.Runtime;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KServe.Node.IsvcController;

/// <summary>What the InferenceService controller watches and how other objects map to InferenceService keys.</summary>
internal static class IsvcControllerSetup
{
    public const string ControllerName = "inferenceservice";

    /// <summary>Builds the controller (a hosted service) around a reconciler; Program and the tests both use it.</summary>
    public static Controller Build(
        SharedInformerFactory informers,
        IsvcControllerOptions options,
        EventRecorder events,
        TimeProvider time,
        ILoggerFactory loggerFactory,
        LeaderElectionOptions? election = null,
        int workers = 2)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var builder = new ControllerBuilder(ControllerName, informers);
        Configure(builder, informers, options, election, workers);
        var reconciler = new IsvcReconciler(informers, events, Options.Create(options), time, loggerFactory.CreateLogger<IsvcReconciler>());
        return builder.Build(reconciler);
    }

    /// <summary>
    /// The informers of the children: they carry serving.kserve.io/inferenceservice, so watching only those keeps the
    /// caches small, and the reconciler reads children from these caches instead of GETting them.
    /// </summary>
    public static InformerOptions Children { get; } = new() { LabelSelector = KServeLabels.InferenceService };

    public static void Configure(ControllerBuilder builder, SharedInformerFactory informers, IsvcControllerOptions options, LeaderElectionOptions? election, int workers = 2)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(informers);
        ArgumentNullException.ThrowIfNull(options);
        IsvcResourceTypes.Register();
        var isvcs = informers.Get<InferenceService>();

        var children = Children;
        // Our own status writes change neither generation, labels nor annotations: they do not requeue the InferenceService.
        builder.For<InferenceService>(Predicates.Any(
                Predicates.GenerationChanged<InferenceService>(), Predicates.LabelsChanged<InferenceService>(), Predicates.AnnotationsChanged<InferenceService>()))
            .Owns<V1Deployment>(options: children)
            .Owns<V1Service>(options: children)
            .Owns<V2HorizontalPodAutoscaler>(options: children)
            .Watches<LocalModelCache>(c => UsersOf(isvcs, CacheViews.From(c)))
            .Watches<LocalModelNamespaceCache>(c => UsersOf(isvcs, CacheViews.From(c)))
            .Watches<LocalModelNode>(n => NodeUsers(isvcs, n), e => e.Type != ResourceEventType.Updated || StatusChanged(e))
            .WithWorkers(workers);
        if (options.EnableGatewayApi)
        {
            builder.Owns<HttpRoute>(options: children);
        }
        else if (!options.DisableIngressCreation)
        {
            builder.Owns<V1Ingress>(options: children);
        }

        if (election is not null)
        {
            builder.WithLeaderElection(election);
        }
    }

    /// <summary>InferenceServices a cache may serve (URI match) or that carry its label (to let go of it).</summary>
    internal static IEnumerable<ObjectKey> UsersOf(Informer<InferenceService> isvcs, CacheView cache)
    {
        var list = cache.Namespace is null ? isvcs.List() : isvcs.List(cache.Namespace);
        foreach (var isvc in list)
        {
            var uri = isvc.Spec.Predictor?.Model?.StorageUri;
            var labelled = isvc.Metadata.Labels?.TryGetValue(KServeLabels.LocalModel, out var name) == true && name == cache.Name;
            if (labelled || (uri is not null && StorageUri.Matches(cache.SourceModelUri, uri)))
            {
                yield return ObjectKey.From(isvc);
            }
        }
    }

    /// <summary>InferenceServices using a cache that has an entry on this node (its progress and status feed their conditions).</summary>
    internal static IEnumerable<ObjectKey> NodeUsers(Informer<InferenceService> isvcs, LocalModelNode node) =>
        node.Spec.LocalModels
            .SelectMany(m => isvcs.ByLabel(KServeLabels.LocalModel, m.ModelName))
            .Select(ObjectKey.From)
            .Distinct();

    private static bool StatusChanged(ResourceEvent<LocalModelNode> e) =>
        e.OldObject is null
        || !System.Text.Json.Nodes.JsonNode.DeepEquals(JsonDiff.ToNode(e.Object)["status"], JsonDiff.ToNode(e.OldObject)["status"]);
}
