using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using KServe.Node.TestKit.ApiServer;

namespace KServe.Node.TestKit.Tests;

internal static class Fixture
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static string CrdDir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "crds");

    public static Task<TestApiServer> StartAsync() =>
        TestApiServer.StartAsync(new TestApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(100) });

    /// <summary>Runs the call and returns the Status it failed with.</summary>
    public static async Task<(HttpStatusCode Code, V1Status Status)> FailsAsync(Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<HttpOperationException>(call);
        var status = KubernetesJson.Deserialize<V1Status>(e.Response.Content);
        return (e.Response.StatusCode, status);
    }

    public static V1ConfigMap ConfigMap(string name, IDictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels },
        Data = new Dictionary<string, string> { ["k"] = "v" },
    };

    public static V1Deployment Deployment(string name, string image = "img:1") => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1DeploymentSpec
        {
            Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = name } },
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = name } },
                Spec = new V1PodSpec
                {
                    Containers = [new V1Container { Name = "main", Image = image, Env = [new V1EnvVar { Name = "A", Value = "1" }] }],
                },
            },
        },
    };
}
