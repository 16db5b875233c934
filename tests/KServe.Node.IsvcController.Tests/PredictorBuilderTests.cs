using System.Text.Json.Nodes;
using k8s.Models;
using KServe.Node.IsvcController.Placement;
using KServe.Node.IsvcController.Resources;
using static KServe.Node.IsvcController.Tests.Samples;

namespace KServe.Node.IsvcController.Tests;

public sealed class PredictorBuilderTests
{
    private static CacheMatch CachedMatch(string uri = "hf://org/model") =>
        CacheMatcher.Match(uri, null, [], [Cache("llama", "hf://org/model", ["gpu"])])!;

    [Fact]
    public void Children_carry_KServes_names_labels_and_owner()
    {
        var isvc = Read(Yaml(KServeStyleYaml));
        var plan = PredictorBuilder.Build(isvc, Options(o => o.EnableGatewayApi = true), null, podsAllowed: true);

        V1ObjectMeta[] metas = [plan.Deployment.Metadata, plan.Service.Metadata, plan.Hpa!.Metadata];
        foreach (var m in metas)
        {
            Assert.Equal("qwen-chat-predictor", m.Name);
            Assert.Equal("team-a", m.NamespaceProperty);
            Assert.Equal("qwen-chat", m.Labels["serving.kserve.io/inferenceservice"]);
            Assert.Equal("predictor", m.Labels["component"]);
            Assert.Equal("nlp", m.Labels["team"]);
            Assert.Equal("gold", m.Labels["tier"]);
            var owner = Assert.Single(m.OwnerReferences);
            Assert.Equal(("serving.kserve.io/v1beta1", "InferenceService", "qwen-chat", true), (owner.ApiVersion, owner.Kind, owner.Name, owner.Controller == true));
        }

        var d = plan.Deployment.Spec;
        Assert.Equal("isvc.qwen-chat-predictor", d.Selector.MatchLabels["app"]);
        Assert.Equal("isvc.qwen-chat-predictor", d.Template.Metadata.Labels["app"]);
        Assert.Equal("kept", d.Template.Metadata.Annotations["example.com/pod-note"]);
        Assert.Equal("8080", d.Template.Metadata.Annotations["prometheus.kserve.io/port"]);
        Assert.Equal("/metrics", d.Template.Metadata.Annotations["prometheus.kserve.io/path"]);
        Assert.Equal(("RollingUpdate", "25%", "25%"), (d.Strategy.Type, d.Strategy.RollingUpdate.MaxUnavailable.Value, d.Strategy.RollingUpdate.MaxSurge.Value));
        Assert.Equal((10, 600), (d.RevisionHistoryLimit, d.ProgressDeadlineSeconds));
        Assert.Equal("model-reader", d.Template.Spec.ServiceAccountName);
        Assert.Equal("H100", d.Template.Spec.NodeSelector["nvidia.com/gpu.product"]);
        Assert.Equal("nvidia.com/gpu", Assert.Single(d.Template.Spec.Tolerations).Key);

        var port = Assert.Single(plan.Service.Spec.Ports);
        Assert.Equal((80, "8080"), (port.Port, port.TargetPort.Value));
        Assert.Equal("isvc.qwen-chat-predictor", plan.Service.Spec.Selector["app"]);

        Assert.Equal(["qwen-chat", "qwen-chat-predictor"], plan.Routes.Select(r => r["metadata"]!["name"]!.GetValue<string>()));
        var route = plan.Routes[0];
        Assert.Equal("qwen-chat-team-a.example.com", route["spec"]!["hostnames"]![0]!.GetValue<string>());
        Assert.Equal("kserve-ingress-gateway", route["spec"]!["parentRefs"]![0]!["name"]!.GetValue<string>());
        Assert.Equal("qwen-chat-predictor", route["spec"]!["rules"]![0]!["backendRefs"]![0]!["name"]!.GetValue<string>());
        Assert.Equal("120s", route["spec"]!["rules"]![0]!["timeouts"]!["request"]!.GetValue<string>());
    }

    [Fact]
    public void LlmServer_container_has_runtime_args_probes_shm_and_gpu_layers()
    {
        var isvc = Read(Yaml(KServeStyleYaml));
        var plan = PredictorBuilder.Build(isvc, Options(o => o.Args = ["--metrics-name={{.Name}}"]), null, podsAllowed: true);
        var c = Assert.Single(plan.Deployment.Spec.Template.Spec.Containers);

        Assert.Equal("kserve-container", c.Name);
        Assert.Equal("kserve-node/kserve-node:latest", c.Image);
        Assert.Equal(
            ["--metrics-name=qwen-chat", "--model=/mnt/models", "--host=0.0.0.0", "--port=8080", "--served-model-name=qwen-chat",
             "--n-gpu-layers=999", "--ctx-size=8192", "--parallel=4"],
            c.Args);
        Assert.Equal("/v2/health/ready", c.ReadinessProbe.HttpGet.Path);
        Assert.Equal("/v2/health/live", c.LivenessProbe.HttpGet.Path);
        Assert.Contains(c.VolumeMounts, m => m.MountPath == "/dev/shm");
        Assert.Contains(plan.Deployment.Spec.Template.Spec.Volumes, v => v.EmptyDir?.Medium == "Memory");
        Assert.Equal("qwen-chat", c.Env.Single(e => e.Name == "INFERENCE_SERVICE_NAME").Value);
        Assert.Equal("hf", c.Env.Single(e => e.Name == "HF_TOKEN").ValueFrom.SecretKeyRef.Name);
        Assert.Equal("1", c.Resources.Limits["nvidia.com/gpu"].ToString());
    }

    [Fact]
    public void No_gpu_means_no_gpu_layers_and_a_users_flag_replaces_the_generated_one()
    {
        var isvc = Read(Isvc(edit: p => p["model"]!["args"] = new JsonArray("--port=9000", "--n-gpu-layers=0")));
        var args = PredictorBuilder.Build(isvc, Options(), null, true).Deployment.Spec.Template.Spec.Containers[0].Args;
        Assert.Equal(["--model=/mnt/models", "--host=0.0.0.0", "--served-model-name=chat", "--port=9000", "--n-gpu-layers=0"], args);
    }

    [Fact]
    public void A_cached_model_mounts_the_serving_pvc_read_only_and_requires_the_placement_label()
    {
        var isvc = Read(Isvc(storageUri: "hf://org/model/sub"));
        var match = CachedMatch("hf://org/model/sub");
        var pod = PredictorBuilder.Build(isvc, Options(), match, podsAllowed: true).Deployment.Spec.Template.Spec;

        Assert.Null(pod.InitContainers);
        var vol = pod.Volumes.Single(v => v.Name == "kserve-pvc-source");
        Assert.Equal("llama-gpu", vol.PersistentVolumeClaim.ClaimName);
        Assert.True(vol.PersistentVolumeClaim.ReadOnlyProperty);
        var mount = pod.Containers[0].VolumeMounts.Single(m => m.Name == "kserve-pvc-source");
        Assert.Equal(("/mnt/models", $"models/{Api.StorageKey.Compute("hf://org/model")}/sub", true), (mount.MountPath, mount.SubPath, mount.ReadOnlyProperty == true));

        var term = Assert.Single(pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms);
        var expr = Assert.Single(term.MatchExpressions);
        Assert.Equal(($"model.kserve-node.io/{Api.StorageKey.Compute("hf://org/model")}", "In", "true"), (expr.Key, expr.OperatorProperty, Assert.Single(expr.Values)));
    }

    [Fact]
    public void The_readonly_false_annotation_opens_a_users_own_claim_but_never_the_shared_node_cache()
    {
        static V1PodSpec Pod(string uri, CacheMatch? match)
        {
            var json = Isvc(storageUri: uri);
            json["metadata"]!["annotations"] = new JsonObject { ["storage.kserve.io/readonly"] = "false" };
            return PredictorBuilder.Build(Read(json), Options(), match, podsAllowed: true).Deployment.Spec.Template.Spec;
        }

        var cached = Pod("hf://org/model", CachedMatch());
        Assert.True(cached.Volumes.Single(v => v.Name == "kserve-pvc-source").PersistentVolumeClaim.ReadOnlyProperty);
        Assert.True(cached.Containers[0].VolumeMounts.Single(m => m.Name == "kserve-pvc-source").ReadOnlyProperty);

        var own = Pod("pvc://my-claim/models", null);
        Assert.False(own.Volumes.Single(v => v.Name == "kserve-pvc-source").PersistentVolumeClaim.ReadOnlyProperty);
        Assert.False(own.Containers[0].VolumeMounts.Single(m => m.Name == "kserve-pvc-source").ReadOnlyProperty);
    }

    [Fact]
    public void Placement_is_added_to_every_term_of_the_users_node_affinity()
    {
        var isvc = Read(Isvc(edit: p => p["affinity"] = JsonNode.Parse("""
            {"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
              {"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]},
              {"matchExpressions":[{"key":"zone","operator":"In","values":["b"]}]}]}},
             "podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[]}}
            """)));
        var pod = PredictorBuilder.Build(isvc, Options(), CachedMatch(), true).Deployment.Spec.Template.Spec;
        var terms = pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms;
        Assert.Equal(2, terms.Count);
        Assert.All(terms, t => Assert.Equal(2, t.MatchExpressions.Count));
        Assert.All(terms, t => Assert.StartsWith("model.kserve-node.io/", t.MatchExpressions[1].Key, StringComparison.Ordinal));
        Assert.NotNull(pod.Affinity.PodAntiAffinity);
    }

    [Fact]
    public void While_no_node_holds_the_model_replicas_are_zero_there_is_no_hpa_and_the_pod_template_is_the_same()
    {
        var isvc = Read(Isvc(edit: p => { p["minReplicas"] = 2; p["maxReplicas"] = 5; }));
        var gated = PredictorBuilder.Build(isvc, Options(), CachedMatch(), podsAllowed: false);
        var open = PredictorBuilder.Build(isvc, Options(), CachedMatch(), podsAllowed: true);

        Assert.Equal(0, gated.Deployment.Spec.Replicas);
        Assert.Null(gated.Hpa);
        Assert.Equal(2, open.Deployment.Spec.Replicas);
        Assert.NotNull(open.Hpa);
        Assert.Equal(
            JsonDiff.ToNode(gated.Deployment.Spec.Template).ToJsonString(),
            JsonDiff.ToNode(open.Deployment.Spec.Template).ToJsonString());
    }

    [Theory]
    [InlineData(null, 0, 2)]     // a Deployment left at 0 while gated is lifted to the minimum
    [InlineData(null, null, 2)]
    [InlineData(null, 4, null)]  // the HPA scaled it: left alone
    public void Hpa_owns_replicas_once_pods_run(string? autoscaler, int? actual, int? expected)
    {
        var isvc = Read(Isvc(edit: p => p["minReplicas"] = 2));
        _ = autoscaler;
        var plan = PredictorBuilder.Build(isvc, Options(), null, podsAllowed: true);
        Assert.Equal(expected, PredictorBuilder.ReplicasToWrite(plan, actual));
        var gated = PredictorBuilder.Build(isvc, Options(), CachedMatch(), podsAllowed: false);
        Assert.Equal(actual == 0 ? null : 0, PredictorBuilder.ReplicasToWrite(gated, actual));
    }

    [Fact]
    public void Autoscaler_class_none_keeps_replicas_at_min_replicas_without_an_hpa()
    {
        var isvc = Read(Isvc(edit: p => p["minReplicas"] = 3));
        isvc = isvc with { Annotations = new Dictionary<string, string> { ["serving.kserve.io/autoscalerClass"] = "none" } };
        var plan = PredictorBuilder.Build(isvc, Options(), null, true);
        Assert.Null(plan.Hpa);
        Assert.Equal(3, plan.Deployment.Spec.Replicas);
        Assert.Equal(3, PredictorBuilder.ReplicasToWrite(plan, 5));
    }

    [Fact]
    public void Without_a_cache_an_init_container_downloads_into_an_empty_dir()
    {
        var isvc = Read(Isvc(edit: p =>
        {
            p["model"]!["storage"] = new JsonObject { ["parameters"] = new JsonObject { ["allowPatterns"] = "*q4_k_m.gguf" } };
            p["model"]!["env"] = JsonNode.Parse("""[{"name":"HF_TOKEN","value":"t"}]""");
        }));
        var plan = PredictorBuilder.Build(isvc, Options(), null, true);
        var pod = plan.Deployment.Spec.Template.Spec;

        Assert.Equal(ModelSource.Download, plan.Source);
        var init = Assert.Single(pod.InitContainers);
        Assert.Equal("storage-initializer", init.Name);
        Assert.Equal(["/app/node-agent"], init.Command);
        Assert.Equal(["download", "hf://org/model", "/mnt/models", "--allow", "*q4_k_m.gguf"], init.Args);
        Assert.Equal("HF_TOKEN", Assert.Single(init.Env).Name);
        Assert.NotNull(pod.Volumes.Single(v => v.Name == "kserve-provision-location").EmptyDir);
        Assert.Equal("/mnt/models", init.VolumeMounts[0].MountPath);
        Assert.Contains(pod.Containers[0].VolumeMounts, m => m.Name == "kserve-provision-location" && m.ReadOnlyProperty == true);
        Assert.Null(pod.Affinity);
    }

    [Fact]
    public void A_pvc_uri_is_mounted_directly()
    {
        var plan = PredictorBuilder.Build(Read(Isvc(storageUri: "pvc://models/llama/q4")), Options(), null, true);
        var pod = plan.Deployment.Spec.Template.Spec;
        Assert.Null(pod.InitContainers);
        Assert.Equal("models", pod.Volumes.Single(v => v.Name == "kserve-pvc-source").PersistentVolumeClaim.ClaimName);
        Assert.Equal("llama/q4", pod.Containers[0].VolumeMounts.Single(m => m.Name == "kserve-pvc-source").SubPath);
    }

    [Fact]
    public void Hpa_defaults_to_cpu_80_and_clamps_min_replicas()
    {
        var hpa = PredictorBuilder.Build(Read(Isvc(edit: p => p["minReplicas"] = 0)), Options(), null, true).Hpa!;
        Assert.Equal((1, 1), (hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas));
        Assert.Equal(("apps/v1", "Deployment", "chat-predictor"), (hpa.Spec.ScaleTargetRef.ApiVersion, hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name));
        var m = Assert.Single(hpa.Spec.Metrics);
        Assert.Equal(("Resource", "cpu", "Utilization", 80), (m.Type, m.Resource.Name, m.Resource.Target.Type, m.Resource.Target.AverageUtilization));
    }

    [Fact]
    public void The_metrics_annotation_asks_for_a_per_pod_custom_metric()
    {
        var hpa = PredictorBuilder.Build(Read(Yaml(KServeStyleYaml)), Options(), null, true).Hpa!;
        Assert.Equal((1, 4), (hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas));
        var m = Assert.Single(hpa.Spec.Metrics);
        Assert.Equal(("Pods", "vllm:num_requests_waiting", "AverageValue", "4"), (m.Type, m.Pods.Metric.Name, m.Pods.Target.Type, m.Pods.Target.AverageValue.ToString()));
    }

    [Fact]
    public void Scale_metric_and_autoscaling_metrics_map_onto_the_hpa()
    {
        var mem = PredictorBuilder.Build(Read(Isvc(edit: p => { p["scaleMetric"] = "memory"; p["scaleTarget"] = 70; })), Options(), null, true).Hpa!;
        Assert.Equal(("memory", 70), (mem.Spec.Metrics[0].Resource.Name, mem.Spec.Metrics[0].Resource.Target.AverageUtilization));

        var custom = PredictorBuilder.Build(Read(Isvc(edit: p => p["autoScaling"] = JsonNode.Parse("""
            {"metrics":[{"type":"PodMetric","podmetric":{"metric":{"backend":"opentelemetry","metricNames":["vllm:kv_cache_usage_perc"]},"target":{"type":"AverageValue","averageValue":"0.8"}}},
                        {"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":60}}}]}
            """))), Options(), null, true).Hpa!;
        Assert.Equal(2, custom.Spec.Metrics.Count);
        Assert.Equal(("Pods", "vllm:kv_cache_usage_perc", 0.8m), (custom.Spec.Metrics[0].Type, custom.Spec.Metrics[0].Pods.Metric.Name, custom.Spec.Metrics[0].Pods.Target.AverageValue.ToDecimal()));
        Assert.Equal(60, custom.Spec.Metrics[1].Resource.Target.AverageUtilization);
    }

    [Fact]
    public void Cluster_local_and_stopped_services_get_no_routes()
    {
        var isvc = Read(Isvc());
        var local = isvc with { Labels = new Dictionary<string, string> { ["networking.kserve.io/visibility"] = "cluster-local" } };
        Assert.Empty(PredictorBuilder.Build(local, Options(o => o.EnableGatewayApi = true), null, true).Routes);
        var stopped = isvc with { Annotations = new Dictionary<string, string> { ["serving.kserve.io/stop"] = "true" } };
        var plan = PredictorBuilder.Build(stopped, Options(o => o.EnableGatewayApi = true), null, true);
        Assert.Empty(plan.Routes);
        Assert.Null(plan.Hpa);
        Assert.Equal(0, plan.Deployment.Spec.Replicas);
        Assert.Empty(PredictorBuilder.Build(isvc, Options(), null, true).Routes);
    }
}
