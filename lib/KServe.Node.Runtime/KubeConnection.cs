using k8s;
using k8s.Exceptions;

namespace KServe.Node.Runtime;

/// <summary>
/// How a daemon finds its cluster, the same way in every daemon: an explicit kubeconfig (flag or
/// <c>KUBECONFIG</c>) first, then the pod's service account, then <c>~/.kube/config</c>. Problems come back as one
/// sentence that names the fix, never as an exception from deep inside the client.
/// </summary>
public static class KubeConnection
{
    /// <summary>Builds a client, or returns false with <paramref name="problem"/> saying what is missing.</summary>
    /// <param name="kubeconfig">A kubeconfig path from the command line; null or empty for the usual search.</param>
    /// <param name="client">The client, when the configuration was found and read.</param>
    /// <param name="problem">Otherwise one sentence naming what is missing and the fix.</param>
    public static bool TryCreate(string? kubeconfig, out Kubernetes? client, out string problem)
    {
        client = null;
        problem = "";
        var path = kubeconfig is { Length: > 0 } ? kubeconfig
            : Environment.GetEnvironmentVariable("KUBECONFIG") is { Length: > 0 } env ? env.Split(Path.PathSeparator)[0]
            : null;
        try
        {
            if (path is null && KubernetesClientConfiguration.IsInCluster())
            {
                client = new Kubernetes(KubernetesClientConfiguration.InClusterConfig());
                return true;
            }
            var file = path ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config");
            if (!File.Exists(file))
            {
                problem = path is null
                    ? $"no cluster to talk to: not running in a pod and no kubeconfig at {file} (pass --kubeconfig FILE or set KUBECONFIG)"
                    : $"kubeconfig {file} does not exist (check --kubeconfig or KUBECONFIG)";
                return false;
            }
            client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(file));
            return true;
        }
        catch (Exception e) when (e is KubeConfigException or IOException or UnauthorizedAccessException or FormatException
            or YamlDotNet.Core.YamlException or ArgumentException or InvalidOperationException)
        {
            problem = $"the kubeconfig {(path ?? "~/.kube/config")} is not usable: {OneLine(e.Message)} (fix it, or pass another with --kubeconfig)";
            return false;
        }
    }

    /// <summary>
    /// <see cref="TryCreate"/> then <see cref="TryReach"/>: what every daemon does at start, so that no cluster, a
    /// broken kubeconfig and a dead server each come back as one sentence.
    /// </summary>
    public static bool TryConnect(string? kubeconfig, TimeSpan timeout, out Kubernetes? client, out string problem)
    {
        if (!TryCreate(kubeconfig, out client, out problem))
        {
            return false;
        }
        if (TryReach(client!, timeout, out problem))
        {
            return true;
        }
        client!.Dispose();
        client = null;
        return false;
    }

    /// <summary>Asks the API server for its version, so that a wrong server or dead cluster is one clear line at start.</summary>
    public static bool TryReach(Kubernetes client, TimeSpan timeout, out string problem)
    {
        ArgumentNullException.ThrowIfNull(client);
        problem = "";
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            client.Version.GetCodeAsync(cts.Token).GetAwaiter().GetResult();
            return true;
        }
        catch (Exception e)
        {
            var why = e is OperationCanceledException ? $"no answer in {timeout.TotalSeconds:0} s" : OneLine(e.InnerException?.Message ?? e.Message);
            problem = $"cannot reach the Kubernetes API server at {client.BaseUri}: {why} (check the kubeconfig's server and credentials)";
            return false;
        }
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}
