using k8s.Models;
using KServe.Node.Api;
using KServe.Node.Api.V1Beta1;
using KServe.Node.CacheController.Controllers;

namespace KServe.Node.CacheController.Tests.Integration;

/// <summary>InferenceServices and LLMInferenceServices as the isvc webhook leaves them (labels and annotations set).</summary>
internal static class Consumers
{
    public static InferenceService Isvc(string ns, string name, string cache, string? cacheNamespace = null, string? nodeGroup = null)
    {
        var labels = new Dictionary<string, string> { [KServeLabels.LocalModel] = cache };
        if (cacheNamespace is not null)
        {
            labels[KServeLabels.LocalModelNamespace] = cacheNamespace;
        }

        var annotations = new Dictionary<string, string> { [KServeAnnotations.LocalModelSourceUri] = "s3://mybucket/mymodel" };
        if (nodeGroup is not null)
        {
            annotations[KServeAnnotations.NodeGroup] = nodeGroup;
        }

        return new InferenceService
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels, Annotations = annotations },
            Spec = new InferenceServiceSpec
            {
                Predictor = new PredictorSpec
                {
                    Model = new ModelSpec { ModelFormat = new ModelFormat { Name = "gguf" }, StorageUri = "s3://mybucket/mymodel" },
                },
            },
        };
    }

    public static LlmInferenceServiceMetadata LlmIsvc(string ns, string name, string cache) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = ns,
            Labels = new Dictionary<string, string> { [KServeLabels.LocalModel] = cache },
            Annotations = new Dictionary<string, string>
            {
                [KServeAnnotations.LocalModelSourceUri] = "s3://mybucket/mymodel",
                [KServeAnnotations.LocalModelPvcName] = $"{cache}-gpu1",
            },
        },
    };
}
