using System.Text.Json.Nodes;
using KServe.Node.IsvcController;
using KServe.Node.IsvcController.Model;
using KServe.Node.IsvcController.Placement;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KServe.Node.IsvcController.Tests;

/// <summary>InferenceService and cache objects written the way KServe users write them.</summary>
internal static class Samples
{
    /// <summary>A KServe-style InferenceService with fields outside our subset (logger, batcher, transformer-less extras).</summary>
    public const string KServeStyleYaml = """
        apiVersion: serving.kserve.io/v1beta1
        kind: InferenceService
        metadata:
          name: qwen-chat
          namespace: team-a
          labels:
            team: nlp
          annotations:
            serving.kserve.io/deploymentMode: RawDeployment
            serving.kserve.io/autoscalerClass: hpa
            serving.kserve.io/metrics: "vllm:num_requests_waiting"
            serving.kserve.io/targetUtilizationPercentage: "4"
            example.com/owner: alice
        spec:
          predictor:
            minReplicas: 1
            maxReplicas: 4
            containerConcurrency: 8
            timeout: 120
            canaryTrafficPercent: 100
            logger:
              mode: all
              url: http://logger.default
            batcher:
              maxBatchSize: 32
            labels:
              tier: gold
            annotations:
              example.com/pod-note: kept
            serviceAccountName: model-reader
            nodeSelector:
              nvidia.com/gpu.product: H100
            tolerations:
            - key: nvidia.com/gpu
              operator: Exists
              effect: NoSchedule
            model:
              modelFormat:
                name: gguf
                version: "3"
              runtime: kserve-node-llm
              protocolVersion: v2
              storageUri: hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF
              args: ["--ctx-size=8192", "--parallel=4"]
              env:
              - name: HF_TOKEN
                valueFrom:
                  secretKeyRef: {name: hf, key: token}
              resources:
                requests: {cpu: "2", memory: 4Gi, nvidia.com/gpu: "1"}
                limits: {memory: 8Gi, nvidia.com/gpu: "1"}
          explainerSpecFromTheFuture:
            whatever: 1
        """;

    /// <summary>YAML to the JSON an API server would hold: plain scalars typed, quoted ones strings.</summary>
    public static JsonObject Yaml(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var node = ToNode(stream.Documents[0].RootNode);
        return (JsonObject)JsonNode.Parse(node!.ToJsonString())!;
    }

    private static JsonNode? ToNode(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value!, ToNode(kv.Value)))),
        YamlSequenceNode seq => new JsonArray([.. seq.Children.Select(ToNode)]),
        YamlScalarNode { Style: ScalarStyle.Plain } s when s.Value is "null" or "~" or "" => null,
        YamlScalarNode { Style: ScalarStyle.Plain } s when s.Value is "true" or "false" => JsonValue.Create(s.Value == "true"),
        YamlScalarNode { Style: ScalarStyle.Plain } s when long.TryParse(s.Value, System.Globalization.CultureInfo.InvariantCulture, out var l) => JsonValue.Create(l),
        YamlScalarNode s => JsonValue.Create(s.Value),
        _ => throw new NotSupportedException(node.NodeType.ToString()),
    };

    /// <summary>A minimal InferenceService of ours; <paramref name="edit"/> changes its predictor.</summary>
    public static JsonObject Isvc(string name = "chat", string ns = "team-a", string storageUri = "hf://org/model", Action<JsonObject>? edit = null)
    {
        var isvc = new JsonObject
        {
            ["apiVersion"] = "serving.kserve.io/v1beta1",
            ["kind"] = "InferenceService",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["uid"] = "uid-1", ["generation"] = 1 },
            ["spec"] = new JsonObject
            {
                ["predictor"] = new JsonObject
                {
                    ["model"] = new JsonObject
                    {
                        ["modelFormat"] = new JsonObject { ["name"] = "gguf" },
                        ["storageUri"] = storageUri,
                    },
                },
            },
        };
        edit?.Invoke((JsonObject)isvc["spec"]!["predictor"]!);
        return isvc;
    }

    public static IsvcSpec Read(JsonObject isvc)
    {
        var (spec, errors) = IsvcReader.Read(isvc);
        Assert.Empty(errors);
        return spec;
    }

    public static CacheView Cache(string name, string uri, string[] groups, string? ns = null, Dictionary<string, string>? nodes = null) => new()
    {
        Name = name,
        Namespace = ns,
        SourceModelUri = uri,
        NodeGroups = groups,
        NodeStatus = nodes ?? [],
    };

    public static IsvcControllerOptions Options(Action<IsvcControllerOptions>? edit = null)
    {
        var o = new IsvcControllerOptions();
        edit?.Invoke(o);
        return o;
    }
}
