using k8s.Models;
using KServe.Node.IsvcController.Model;

namespace KServe.Node.IsvcController.Resources;

/// <summary>
/// Builds the <c>kserve-container</c> running llm-server: the runtime's image and args from options, the
/// user's inline container merged on top (user args appended, user env winning by name), KServe health probes,
/// GPU offload when a GPU is requested.
/// </summary>
internal static class LlmServerContainer
{
    public const string GpuResource = "nvidia.com/gpu";

    public static V1Container Build(IsvcSpec isvc, IsvcControllerOptions options, V1VolumeMount modelMount, string? shmVolume)
    {
        ArgumentNullException.ThrowIfNull(isvc);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(modelMount);
        var user = isvc.Predictor.Container;
        var port = user.Ports is [{ } first, ..] ? first.ContainerPort : options.Port;

        var mounts = new List<V1VolumeMount> { modelMount };
        if (shmVolume is not null)
        {
            mounts.Add(new V1VolumeMount { Name = shmVolume, MountPath = "/dev/shm" });
        }

        mounts.AddRange(user.VolumeMounts ?? []);

        return new V1Container
        {
            Name = IsvcNames.ContainerName,
            Image = string.IsNullOrEmpty(user.Image) ? options.Image : user.Image,
            ImagePullPolicy = user.ImagePullPolicy,
            Command = user.Command is { Count: > 0 } ? user.Command : options.Command.Count > 0 ? [.. options.Command] : null,
            Args = Args(isvc, options, port),
            Env = Env(isvc.Name, user.Env),
            EnvFrom = user.EnvFrom,
            Ports = user.Ports is { Count: > 0 }
                ? user.Ports
                : [new V1ContainerPort { Name = "http", ContainerPort = options.Port, Protocol = "TCP" }],
            Resources = user.Resources,
            VolumeMounts = mounts,
            WorkingDir = user.WorkingDir,
            SecurityContext = user.SecurityContext,
            Lifecycle = user.Lifecycle,
            // llm-server answers /v2/health/live as soon as HTTP is up and /v2/health/ready only once the model and
            // its KV cache are allocated; the startup probe gives a large model time to load before liveness counts.
            StartupProbe = user.StartupProbe ?? Probe("/v2/health/live", port, periodSeconds: 5, failureThreshold: 360),
            LivenessProbe = user.LivenessProbe ?? Probe("/v2/health/live", port, periodSeconds: 10, failureThreshold: 3),
            ReadinessProbe = user.ReadinessProbe ?? Probe("/v2/health/ready", port, periodSeconds: 5, failureThreshold: 3),
            TerminationMessagePolicy = user.TerminationMessagePolicy ?? "FallbackToLogsOnError",
            Stdin = user.Stdin,
            Tty = user.Tty,
        };
    }

    /// <summary>True when the container requests or limits at least one NVIDIA GPU.</summary>
    public static bool RequestsGpu(V1ResourceRequirements? resources)
    {
        static bool Positive(IDictionary<string, ResourceQuantity>? map) =>
            map is not null && map.TryGetValue(GpuResource, out var q) && q is not null && q.ToDecimal() > 0;
        return resources is not null && (Positive(resources.Limits) || Positive(resources.Requests));
    }

    /// <summary>
    /// Runtime args (options, <c>{{.Name}}</c> replaced), then the generated ones, then the user's. A generated
    /// flag the user also passes is left out, so the user's value wins without a duplicate option.
    /// </summary>
    internal static List<string> Args(IsvcSpec isvc, IsvcControllerOptions options, int port)
    {
        var user = isvc.Predictor.Container.Args ?? [];
        var runtime = options.Args.Select(a => a.Replace("{{.Name}}", isvc.Name, StringComparison.Ordinal)).ToList();
        var given = new HashSet<string>(user.Concat(runtime).Select(FlagName).OfType<string>(), StringComparer.Ordinal);

        var generated = new List<(string Flag, string Value)>
        {
            ("--model", IsvcNames.ModelMountPath),
            ("--host", "0.0.0.0"),
            ("--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("--served-model-name", isvc.Name),
        };
        if (RequestsGpu(isvc.Predictor.Container.Resources))
        {
            generated.Add(("--n-gpu-layers", options.GpuLayers.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        var args = new List<string>(runtime);
        args.AddRange(generated.Where(g => !given.Contains(g.Flag)).Select(g => $"{g.Flag}={g.Value}"));
        args.AddRange(user);
        return args;
    }

    private static string? FlagName(string arg)
    {
        if (!arg.StartsWith("--", StringComparison.Ordinal))
        {
            return null;
        }

        var eq = arg.IndexOf('=', StringComparison.Ordinal);
        return eq < 0 ? arg : arg[..eq];
    }

    private static List<V1EnvVar> Env(string isvcName, IList<V1EnvVar>? user)
    {
        var env = new List<V1EnvVar> { new() { Name = "INFERENCE_SERVICE_NAME", Value = isvcName } };
        foreach (var e in user ?? [])
        {
            env.RemoveAll(x => x.Name == e.Name);
            env.Add(e);
        }

        return env;
    }

    private static V1Probe Probe(string path, int port, int periodSeconds, int failureThreshold) => new()
    {
        HttpGet = new V1HTTPGetAction { Path = path, Port = port, Scheme = "HTTP" },
        PeriodSeconds = periodSeconds,
        TimeoutSeconds = 5,
        FailureThreshold = failureThreshold,
    };
}
