using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using k8s.Autorest;
using k8s.Models;
using KServe.Node.TestKit;
using KServe.Node.TestKit.ApiServer;

namespace KServe.Node.E2E.Tests;

/// <summary>
/// The deployable artefacts: the kustomize base renders, every built-in object in it is valid against the
/// Kubernetes API types, the samples are accepted by our CRDs on the test API server, and Dockerfile.cuda
/// names only stages, sources and entry points that exist. (No container engine runs here, so the image
/// build itself is checked on a machine with Docker.)
/// </summary>
public sealed partial class PackagingTests
{
    private static string Kubectl()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            var p = Path.Combine(dir, "kubectl");
            if (File.Exists(p))
            {
                return p;
            }
        }
        throw new InvalidOperationException("kubectl is not on PATH: it is needed to render the kustomize base (daemonset/)");
    }

    internal static string RenderKustomize()
    {
        var psi = new ProcessStartInfo(Kubectl(), ["kustomize", Path.Combine(RepoPaths.Root, "daemonset")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"kubectl kustomize daemonset/ failed: {stderr}");
        return stdout.Result;
    }

    internal static List<JsonObject> Documents(string yaml) =>
        [.. KServe.Node.Api.Serialization.YamlJson.ParseAll(yaml).OfType<JsonObject>()];

    [Fact]
    public void Kustomize_base_renders_every_component()
    {
        var docs = Documents(RenderKustomize());
        var kinds = docs.Select(d => $"{d["kind"]}/{d["metadata"]!["name"]}").ToHashSet();
        Assert.Contains("DaemonSet/kserve-node-agent", kinds);
        Assert.Contains("Deployment/kserve-node-cache-controller", kinds);
        Assert.Contains("Deployment/kserve-node-isvc-controller", kinds);
        Assert.Contains("CustomResourceDefinition/localmodelcaches.serving.kserve.io", kinds);
        Assert.Contains("CustomResourceDefinition/localmodelnodes.serving.kserve.io", kinds);
        Assert.Contains(docs, d => (string?)d["kind"] == "ValidatingWebhookConfiguration"
            && d["webhooks"]!.AsArray().Any(w => ((string?)w!["name"])!.Contains("localmodelnamespacecache", StringComparison.Ordinal)));
    }

    /// <summary>
    /// The InferenceService webhook's matchConditions select what the controller calls ours with its default flags (the
    /// runtime name; without a runtime, the model formats), so the API server calls it for nothing else. The CEL itself
    /// is not evaluated here (no CEL engine runs in the tests); its guards keep it from failing on a missing field.
    /// </summary>
    [Fact]
    public void The_inferenceservice_webhook_is_called_only_for_our_runtime()
    {
        var config = Documents(RenderKustomize()).Single(d => (string?)d["kind"] == "ValidatingWebhookConfiguration"
            && (string?)d["metadata"]!["name"] == "kserve-node-isvc-controller");
        var hook = config["webhooks"]!.AsArray().Single()!;
        Assert.Equal("Fail", (string?)hook["failurePolicy"]);
        var expression = (string)Assert.Single(hook["matchConditions"]!.AsArray())!["expression"]!;
        var defaults = new KServe.Node.IsvcController.IsvcControllerOptions();
        Assert.Contains($"object.spec.predictor.model.runtime == '{defaults.RuntimeName}'", expression, StringComparison.Ordinal);
        Assert.Contains($"in [{string.Join(", ", defaults.ModelFormats.Select(f => $"'{f.ToLowerInvariant()}'"))}]", expression, StringComparison.Ordinal);
        // Every field read is guarded by has() on its parents, in the order the paths nest.
        foreach (var path in new[] { "object.spec", "object.spec.predictor", "object.spec.predictor.model", "object.spec.predictor.model.runtime",
                     "object.spec.predictor.model.modelFormat", "object.spec.predictor.model.modelFormat.name" })
        {
            Assert.Contains($"has({path})", expression, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A fresh node works: the kubelet makes the hostPath root-owned, so an init step running as root with only
    /// CAP_CHOWN hands it to the agent's uid, and the agent itself stays non-root with every capability dropped.
    /// </summary>
    [Fact]
    public void The_agent_daemonset_prepares_its_hostPath_with_only_CAP_CHOWN_and_runs_the_agent_unprivileged()
    {
        var ds = Documents(RenderKustomize()).Single(d => (string?)d["kind"] == "DaemonSet" && (string?)d["metadata"]!["name"] == "kserve-node-agent");
        var pod = ds["spec"]!["template"]!["spec"]!;
        var init = pod["initContainers"]!.AsArray().Single()!;
        Assert.Equal("prepare-cache", (string?)init["name"]);
        Assert.Equal(0, (int)init["securityContext"]!["runAsUser"]!);
        Assert.Equal(["ALL"], init["securityContext"]!["capabilities"]!["drop"]!.AsArray().Select(c => (string)c!));
        Assert.Equal(["CHOWN"], init["securityContext"]!["capabilities"]!["add"]!.AsArray().Select(c => (string)c!));
        Assert.False((bool)init["securityContext"]!["allowPrivilegeEscalation"]!);
        var command = string.Join(' ', init["command"]!.AsArray().Select(c => (string)c!));
        Assert.Contains("chown -h 1000:1000", command, StringComparison.Ordinal);
        Assert.Equal("/mnt/models", (string?)init["volumeMounts"]![0]!["mountPath"]);

        var agent = pod["containers"]!.AsArray().Single(c => (string?)c!["name"] == "node-agent")!;
        Assert.True((bool)pod["securityContext"]!["runAsNonRoot"]!);
        Assert.Equal(1000, (int)pod["securityContext"]!["runAsUser"]!);
        Assert.Null(agent["securityContext"]!["runAsUser"]);
        Assert.Equal(["ALL"], agent["securityContext"]!["capabilities"]!["drop"]!.AsArray().Select(c => (string)c!));
        Assert.Null(agent["securityContext"]!["capabilities"]!["add"]);
    }

    /// <summary>The agent reads Secrets and ServiceAccounts only in the job namespace, and one ConfigMap by name.</summary>
    [Fact]
    public void The_agent_RBAC_has_no_cluster_wide_secret_access()
    {
        var docs = Documents(RenderKustomize());
        var bindings = docs.Where(d => (string?)d["kind"] is "ClusterRoleBinding" or "RoleBinding"
            && d["subjects"]!.AsArray().Any(s => (string?)s!["name"] == "kserve-node-agent")).ToList();
        JsonObject Role(JsonObject binding) => docs.Single(d => (string?)d["kind"] == (string?)binding["roleRef"]!["kind"]
            && (string?)d["metadata"]!["name"] == (string?)binding["roleRef"]!["name"]
            && (string?)d["metadata"]!["namespace"] == (string?)binding["metadata"]!["namespace"]);
        static IEnumerable<string> Resources(JsonObject role) => role["rules"]!.AsArray().SelectMany(r => r!["resources"]!.AsArray().Select(x => (string)x!));

        foreach (var cluster in bindings.Where(b => (string?)b["kind"] == "ClusterRoleBinding"))
        {
            Assert.DoesNotContain(Resources(Role(cluster)), r => r is "secrets" or "serviceaccounts" or "configmaps" or "*");
        }
        var credentials = bindings.Where(b => (string?)b["kind"] == "RoleBinding" && Resources(Role(b)).Contains("secrets")).ToList();
        Assert.Equal(["kserve-localmodel-jobs"], credentials.Select(b => (string?)b["metadata"]!["namespace"]));
        Assert.Equal(["get"], Role(credentials[0])["rules"]!.AsArray().SelectMany(r => r!["verbs"]!.AsArray().Select(v => (string)v!)).Distinct());
        var config = Role(bindings.Single(b => (string?)b["kind"] == "RoleBinding" && Resources(Role(b)).Contains("configmaps")));
        Assert.Equal(["inferenceservice-config"], config["rules"]![0]!["resourceNames"]!.AsArray().Select(n => (string)n!));
        Assert.Contains(docs, d => (string?)d["kind"] == "Namespace" && (string?)d["metadata"]!["name"] == "kserve-localmodel-jobs");
    }

    /// <summary>
    /// A leaked agent token cannot write other nodes' status (a ValidatingAdmissionPolicy on the bound token's node
    /// claim, bound with Deny), only labelled scraper namespaces reach the agent's port, and the agent is evicted last.
    /// The CEL itself needs a real kube-apiserver to run; here its shape is checked.
    /// </summary>
    [Fact]
    public void The_agent_writes_only_its_own_node_is_reached_only_by_scrapers_and_is_evicted_last()
    {
        var docs = Documents(RenderKustomize());
        var ds = docs.Single(d => (string?)d["kind"] == "DaemonSet" && (string?)d["metadata"]!["name"] == "kserve-node-agent");
        Assert.Equal("system-node-critical", (string?)ds["spec"]!["template"]!["spec"]!["priorityClassName"]);

        var policy = docs.Single(d => (string?)d["kind"] == "ValidatingAdmissionPolicy");
        var rule = policy["spec"]!["matchConstraints"]!["resourceRules"]![0]!;
        Assert.Contains("localmodelnodes/status", rule["resources"]!.AsArray().Select(r => (string)r!));
        Assert.Contains("system:serviceaccount:kserve-node:kserve-node-agent", (string)policy["spec"]!["matchConditions"]![0]!["expression"]!, StringComparison.Ordinal);
        var check = (string)policy["spec"]!["validations"]![0]!["expression"]!;
        Assert.Contains("request.name == request.userInfo.extra[\"authentication.kubernetes.io/node-name\"][0]", check, StringComparison.Ordinal);
        var binding = docs.Single(d => (string?)d["kind"] == "ValidatingAdmissionPolicyBinding");
        Assert.Equal(((string?)policy["metadata"]!["name"], "Deny"), ((string?)binding["spec"]!["policyName"], (string?)binding["spec"]!["validationActions"]![0]));
        // The ServiceAccount the policy names is the one the DaemonSet runs as.
        Assert.Equal("kserve-node-agent", (string?)ds["spec"]!["template"]!["spec"]!["serviceAccountName"]);
        Assert.Equal("kserve-node", (string?)ds["metadata"]!["namespace"]);

        var np = docs.Single(d => (string?)d["kind"] == "NetworkPolicy" && (string?)d["metadata"]!["name"] == "kserve-node-agent");
        Assert.Equal("node-agent", (string?)np["spec"]!["podSelector"]!["matchLabels"]!["app.kubernetes.io/name"]);
        var ingress = np["spec"]!["ingress"]!.AsArray().Single()!;
        Assert.Equal("true", (string?)ingress["from"]![0]!["namespaceSelector"]!["matchLabels"]!["kserve-node.io/scrape"]);
        var agentPort = ds["spec"]!["template"]!["spec"]!["containers"]![0]!["ports"]![0]!["containerPort"]!.GetValue<int>();
        Assert.Equal(agentPort, ingress["ports"]![0]!["port"]!.GetValue<int>());
    }

    /// <summary>
    /// Each built-in object deserializes into KubernetesClient's models (generated from the published
    /// OpenAPI schema) and serializes back without losing a field: a misspelt or misplaced field would be
    /// dropped by the typed model and show up as a difference.
    /// </summary>
    [Fact]
    public void Built_in_objects_match_the_published_API_types_field_for_field()
    {
        var problems = new List<string>();
        foreach (var doc in Documents(RenderKustomize()))
        {
            var kind = (string)doc["kind"]!;
            var apiVersion = (string)doc["apiVersion"]!;
            var type = ModelType(apiVersion, kind);
            if (type is null)
            {
                problems.Add($"{apiVersion} {kind}: no API type known for it");
                continue;
            }
            var typed = DeserializeAs(type, doc.ToJsonString());
            var back = JsonNode.Parse(KubernetesJson.Serialize(typed))!;
            foreach (var missing in Missing(doc, back, ""))
            {
                problems.Add($"{kind}/{doc["metadata"]!["name"]}: {missing} is not a field of {type.Name}");
            }
        }
        Assert.Empty(problems);
    }

    [Fact]
    public async Task Samples_are_accepted_by_the_CRDs_on_the_API_server()
    {
        await using var server = await TestApiServer.StartAsync();
        await server.ApplyCrdsFromDirectoryAsync(RepoPaths.Crds);
        await server.ApplyCrdsFromDirectoryAsync(Path.Combine(RepoPaths.Crds, "optional"));
        using var client = server.CreateClient("packaging-test");
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.Root, "daemonset", "samples"), "*.yaml").Order(StringComparer.Ordinal))
        {
            foreach (var doc in Documents(await File.ReadAllTextAsync(file)))
            {
                var (group, version) = SplitApiVersion((string)doc["apiVersion"]!);
                var plural = ((string)doc["kind"]!).ToLowerInvariant() + "s";
                var ns = (string?)doc["metadata"]!["namespace"];
                try
                {
                    if (ns is null)
                    {
                        await client.CustomObjects.CreateClusterCustomObjectAsync(doc, group, version, plural);
                    }
                    else
                    {
                        await client.CustomObjects.CreateNamespacedCustomObjectAsync(doc, group, version, ns, plural);
                    }
                }
                catch (HttpOperationException e)
                {
                    Assert.Fail($"{Path.GetFileName(file)}: {(int)e.Response.StatusCode} {e.Response.Content}");
                }
            }
        }
        var cache = await client.CustomObjects.GetClusterCustomObjectAsync("serving.kserve.io", "v1alpha1", "localmodelcaches", "qwen2-5-0-5b-instruct");
        Assert.NotNull(cache);
    }

    [Fact]
    public async Task A_sample_with_a_schema_violation_is_refused_naming_the_field()
    {
        await using var server = await TestApiServer.StartAsync();
        await server.ApplyCrdsFromDirectoryAsync(RepoPaths.Crds);
        using var client = server.CreateClient("packaging-test");
        var doc = Documents(await File.ReadAllTextAsync(Path.Combine(RepoPaths.Root, "daemonset", "samples", "cache.yaml")))[0];
        doc["spec"]!["nodeGroups"] = new JsonArray();
        var e = await Assert.ThrowsAsync<HttpOperationException>(() =>
            client.CustomObjects.CreateClusterCustomObjectAsync(doc, "serving.kserve.io", "v1alpha1", "localmodelcaches"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        Assert.Contains("spec.nodeGroups", e.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public void Dockerfile_names_only_stages_sources_and_entry_points_that_exist()
    {
        var path = Path.Combine(RepoPaths.Root, "Dockerfile.cuda");
        var lines = JoinContinuations(File.ReadAllLines(path));
        var stages = new HashSet<string>(StringComparer.Ordinal);
        var problems = new List<string>();
        var published = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            if (FromRegex().Match(line) is { Success: true } from)
            {
                stages.Add(from.Groups["stage"].Value);
                continue;
            }
            if (line.StartsWith("COPY ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToList();
                var fromStage = parts.FirstOrDefault(p => p.StartsWith("--from=", StringComparison.Ordinal));
                var sources = parts.Where(p => !p.StartsWith("--", StringComparison.Ordinal)).SkipLast(1).ToList();
                if (fromStage is not null)
                {
                    var name = fromStage["--from=".Length..];
                    if (!stages.Contains(name))
                    {
                        problems.Add($"COPY --from={name}: no earlier stage of that name");
                    }
                    continue;
                }
                foreach (var src in sources)
                {
                    if (!File.Exists(Path.Combine(RepoPaths.Root, src)) && !Directory.Exists(Path.Combine(RepoPaths.Root, src)))
                    {
                        problems.Add($"COPY source '{src}' does not exist in the repository");
                    }
                }
                continue;
            }
            foreach (Match m in CsprojRegex().Matches(line))
            {
                var csproj = m.Value;
                if (!File.Exists(Path.Combine(RepoPaths.Root, csproj)))
                {
                    problems.Add($"published project '{csproj}' does not exist");
                    continue;
                }
                var text = File.ReadAllText(Path.Combine(RepoPaths.Root, csproj));
                var assembly = AssemblyRegex().Match(text);
                published.Add(assembly.Success ? assembly.Groups[1].Value : Path.GetFileNameWithoutExtension(csproj));
            }
        }
        foreach (var line in lines.Where(l => l.StartsWith("CMD ", StringComparison.Ordinal) || l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal)))
        {
            foreach (Match m in AppPathRegex().Matches(line))
            {
                if (!published.Contains(m.Groups[1].Value))
                {
                    problems.Add($"{line}: /app/{m.Groups[1].Value} is not an assembly the build stage publishes");
                }
            }
        }
        Assert.Equal(["build", "llama", "llama-cpu", "cpu", "cuda"], stages);
        Assert.Equal(["node-agent", "cache-controller", "isvc-controller", "llm-server"], published);
        Assert.Empty(problems);
        // The manifests run the daemons by those same paths.
        foreach (Match m in AppPathRegex().Matches(RenderKustomize()))
        {
            Assert.Contains(m.Groups[1].Value, published);
        }
    }

    private static List<string> JoinContinuations(string[] raw)
    {
        var result = new List<string>();
        var current = "";
        foreach (var l in raw)
        {
            var t = l.Trim();
            if (t.StartsWith('#') || t.Length == 0)
            {
                continue;
            }
            if (t.EndsWith('\\'))
            {
                current += t[..^1] + " ";
                continue;
            }
            result.Add(current + t);
            current = "";
        }
        return result;
    }

    private static IEnumerable<string> Missing(JsonNode original, JsonNode? roundTripped, string path)
    {
        if (original is JsonObject o)
        {
            foreach (var (key, value) in o)
            {
                var child = path.Length == 0 ? key : $"{path}.{key}";
                if (roundTripped is not JsonObject r || !r.ContainsKey(key))
                {
                    if (value is not null)
                    {
                        yield return child;
                    }
                    continue;
                }
                foreach (var m in Missing(value!, r[key], child))
                {
                    yield return m;
                }
            }
        }
        else if (original is JsonArray a && roundTripped is JsonArray ra)
        {
            for (var i = 0; i < a.Count; i++)
            {
                foreach (var m in Missing(a[i]!, i < ra.Count ? ra[i] : null, $"{path}[{i}]"))
                {
                    yield return m;
                }
            }
        }
    }

    private static object DeserializeAs(Type type, string json)
    {
        var method = typeof(KubernetesJson).GetMethods().Single(m => m.Name == nameof(KubernetesJson.Deserialize)
            && m.IsGenericMethodDefinition && m.GetParameters() is [{ ParameterType: var p0 }, _] && p0 == typeof(string));
        return method.MakeGenericMethod(type).Invoke(null, [json, null])!;
    }

    private static (string Group, string Version) SplitApiVersion(string apiVersion)
    {
        var slash = apiVersion.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? ("", apiVersion) : (apiVersion[..slash], apiVersion[(slash + 1)..]);
    }

    private static Type? ModelType(string apiVersion, string kind)
    {
        var (group, version) = SplitApiVersion(apiVersion);
        return typeof(V1Pod).Assembly.GetTypes().FirstOrDefault(t =>
            t.GetCustomAttributes(typeof(KubernetesEntityAttribute), false) is [KubernetesEntityAttribute a]
            && a.Kind == kind && a.ApiVersion == version && (a.Group ?? "") == group);
    }

    [GeneratedRegex(@"^FROM\s+\S+\s+AS\s+(?<stage>\S+)$", RegexOptions.IgnoreCase)]
    private static partial Regex FromRegex();

    [GeneratedRegex(@"[\w./-]+\.csproj")]
    private static partial Regex CsprojRegex();

    [GeneratedRegex(@"<AssemblyName>([^<]+)</AssemblyName>")]
    private static partial Regex AssemblyRegex();

    [GeneratedRegex(@"/app/([a-z-]+)(?=[""\s\]]|$)")]
    private static partial Regex AppPathRegex();
}
