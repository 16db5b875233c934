using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>
/// Non-resource endpoints kubectl reads (Kubernetes docs "API Concepts" / "Discovery API"): /version,
/// legacy discovery (/api, /api/v1, /apis, /apis/{group}/{version}) and an OpenAPI v3 index whose
/// per-group documents list each resource's paths with the fieldValidation parameter and
/// x-kubernetes-group-version-kind, which is what kubectl consults before it sends a request.
/// </summary>
internal static class Discovery
{
    public static byte[]? Answer(TestApiServerState state, HttpContext ctx, string[] segs)
    {
        JsonNode? node = segs switch
        {
            [] => new JsonObject { ["paths"] = new JsonArray([.. Paths(state).Select(p => (JsonNode?)p)]) },
            ["version"] => new JsonObject
            {
                ["major"] = "1",
                ["minor"] = "32",
                ["gitVersion"] = "v1.32.0",
                ["gitCommit"] = "0000000000000000000000000000000000000000",
                ["gitTreeState"] = "clean",
                ["buildDate"] = "2024-12-11T00:00:00Z",
                ["goVersion"] = "go1.23.0",
                ["compiler"] = "gc",
                ["platform"] = "linux/amd64",
            },
            ["healthz"] or ["livez"] or ["readyz"] => null,
            ["api"] => new JsonObject
            {
                ["kind"] = "APIVersions",
                ["versions"] = new JsonArray("v1"),
                ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject
                {
                    ["clientCIDR"] = "0.0.0.0/0",
                    ["serverAddress"] = ctx.Request.Host.Value,
                }),
            },
            ["api", var v] => ResourceList(state, "", v),
            ["apis"] => GroupList(state),
            ["apis", var g] => Groups(state).FirstOrDefault(x => x["name"]!.GetValue<string>() == g),
            ["apis", var g, var v] => ResourceList(state, g, v),
            ["openapi", "v2"] => new JsonObject
            {
                ["swagger"] = "2.0",
                ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0" },
                ["paths"] = new JsonObject(),
                ["definitions"] = new JsonObject(),
            },
            ["openapi", "v3"] => OpenApiIndex(state),
            ["openapi", "v3", "api", var v] => OpenApiDocument(state, "", v),
            ["openapi", "v3", "apis", var g, var v] => OpenApiDocument(state, g, v),
            _ => null,
        };
        if (node is null)
        {
            return segs is ["healthz"] or ["livez"] or ["readyz"] ? "ok"u8.ToArray() : null;
        }
        return Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    private static IEnumerable<string> Paths(TestApiServerState state) =>
        new[] { "/api", "/api/v1", "/apis", "/openapi/v2", "/openapi/v3", "/version", "/healthz", "/livez", "/readyz" }
            .Concat(state.Registry.All.Where(t => t.Group.Length > 0).Select(t => $"/apis/{t.Group}/{t.Version}").Distinct())
            .Concat(state.Registry.All.Where(t => t.Group.Length > 0).Select(t => $"/apis/{t.Group}").Distinct())
            .Order(StringComparer.Ordinal);

    private static List<JsonObject> Groups(TestApiServerState state) =>
        [.. state.Registry.All.Where(t => t.Group.Length > 0).GroupBy(t => t.Group).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g =>
        {
            var versions = g.Select(t => t.Version).Distinct().OrderByDescending(v => v, StringComparer.Ordinal).ToList();
            return new JsonObject
            {
                ["kind"] = "APIGroup",
                ["apiVersion"] = "v1",
                ["name"] = g.Key,
                ["versions"] = new JsonArray([.. versions.Select(v => (JsonNode)new JsonObject { ["groupVersion"] = $"{g.Key}/{v}", ["version"] = v })]),
                ["preferredVersion"] = new JsonObject { ["groupVersion"] = $"{g.Key}/{versions[0]}", ["version"] = versions[0] },
            };
        })];

    private static JsonObject GroupList(TestApiServerState state)
    {
        var groups = Groups(state);
        foreach (var g in groups)
        {
            g.Remove("kind");
            g.Remove("apiVersion");
        }
        return new JsonObject { ["kind"] = "APIGroupList", ["apiVersion"] = "v1", ["groups"] = new JsonArray([.. groups]) };
    }

    private static JsonObject? ResourceList(TestApiServerState state, string group, string version)
    {
        var types = state.Registry.All.Where(t => t.Group == group && t.Version == version).OrderBy(t => t.Plural, StringComparer.Ordinal).ToList();
        if (types.Count == 0)
        {
            return null;
        }
        var resources = new JsonArray();
        foreach (var t in types)
        {
            var r = new JsonObject
            {
                ["name"] = t.Plural,
                ["singularName"] = t.Singular,
                ["namespaced"] = t.Namespaced,
                ["kind"] = t.Kind,
                ["verbs"] = new JsonArray([.. ResourceType.AllVerbs.Select(v => (JsonNode?)v)]),
            };
            if (t.ShortNames.Length > 0)
            {
                r["shortNames"] = new JsonArray([.. t.ShortNames.Select(s => (JsonNode?)s)]);
            }
            if (t.Categories.Length > 0)
            {
                r["categories"] = new JsonArray([.. t.Categories.Select(s => (JsonNode?)s)]);
            }
            resources.Add(r);
            if (t.HasStatus)
            {
                resources.Add(new JsonObject
                {
                    ["name"] = t.Plural + "/status",
                    ["singularName"] = "",
                    ["namespaced"] = t.Namespaced,
                    ["kind"] = t.Kind,
                    ["verbs"] = new JsonArray("get", "patch", "update"),
                });
            }
        }
        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = group.Length == 0 ? version : $"{group}/{version}",
            ["resources"] = resources,
        };
    }

    private static JsonObject OpenApiIndex(TestApiServerState state)
    {
        var paths = new JsonObject();
        foreach (var gv in state.Registry.All.Select(t => t.Group.Length == 0 ? $"api/{t.Version}" : $"apis/{t.Group}/{t.Version}").Distinct().Order(StringComparer.Ordinal))
        {
            paths[gv] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{gv}?hash=0" };
        }
        return new JsonObject { ["paths"] = paths };
    }

    private static JsonObject? OpenApiDocument(TestApiServerState state, string group, string version)
    {
        var types = state.Registry.All.Where(t => t.Group == group && t.Version == version).ToList();
        if (types.Count == 0)
        {
            return null;
        }
        var paths = new JsonObject();
        foreach (var t in types)
        {
            JsonObject Gvk() => new() { ["group"] = t.Group, ["version"] = t.Version, ["kind"] = t.Kind };
            JsonObject Op(string action, bool fieldValidation) => new()
            {
                ["operationId"] = action + t.Kind,
                ["x-kubernetes-action"] = action,
                ["x-kubernetes-group-version-kind"] = Gvk(),
                ["parameters"] = fieldValidation
                    ? new JsonArray(new JsonObject { ["name"] = "fieldValidation", ["in"] = "query", ["schema"] = new JsonObject { ["type"] = "string" } })
                    : new JsonArray(),
                ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "OK" } },
            };
            var prefix = t.Group.Length == 0 ? $"/api/{t.Version}" : $"/apis/{t.Group}/{t.Version}";
            var collection = t.Namespaced ? $"{prefix}/namespaces/{{namespace}}/{t.Plural}" : $"{prefix}/{t.Plural}";
            paths[collection] = new JsonObject { ["get"] = Op("list", false), ["post"] = Op("post", true) };
            paths[collection + "/{name}"] = new JsonObject
            {
                ["get"] = Op("get", false),
                ["put"] = Op("put", true),
                ["patch"] = Op("patch", true),
                ["delete"] = Op("delete", false),
            };
        }
        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0" },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = new JsonObject() },
        };
    }
}
