using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace KServe.Node.IsvcController.Resources;

/// <summary>
/// A Gateway API HTTPRoute, kept generic: metadata typed, the spec as JSON (the project does not depend on the
/// Gateway API types; it writes the fields KServe writes and keeps whatever else is there).
/// </summary>
[KubernetesEntity(Group = PredictorBuilder.GatewayGroup, Kind = "HTTPRoute", ApiVersion = "v1", PluralName = "httproutes")]
internal sealed class HttpRoute : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = PredictorBuilder.GatewayGroup + "/v1";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "HTTPRoute";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public JsonObject? Spec { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? ExtensionData { get; set; }

    public static HttpRoute From(JsonObject route) => KubernetesJson.Deserialize<HttpRoute>(route.ToJsonString());
}
