using k8s;
using k8s.Models;
using KServe.Node.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace KServe.Node.Runtime.Tests;

public sealed class HostingTests
{
    [Fact]
    public async Task AddController_registers_each_controller_as_its_own_hosted_service_sharing_one_informer_factory()
    {
        var services = new ServiceCollection();
        services.AddSingleton(new Kubernetes(new KubernetesClientConfiguration { Host = "http://127.0.0.1:1" }));
        services.AddController<NoopReconciler>("first", b => b.For<V1ConfigMap>());
        services.AddController<OtherReconciler>("second", b => b.For<V1Secret>().Owns<V1ConfigMap>().WithWorkers(2));
        await using var provider = services.BuildServiceProvider();

        var hosted = provider.GetServices<IHostedService>().ToList();
        var controllers = hosted.OfType<Controller>().ToList();
        Assert.Equal(["first", "second"], controllers.Select(c => c.Name));
        Assert.Equal(3, hosted.Count);
        Assert.Equal("Secret", controllers[1].Primary.Kind);

        var informers = provider.GetRequiredService<SharedInformerFactory>();
        Assert.Same(informers.Get<V1ConfigMap>(), informers.Get<V1ConfigMap>());
        Assert.NotSame(informers.Get<V1ConfigMap>(), informers.Get<V1ConfigMap>(new InformerOptions { Namespace = "x" }));
    }

    private sealed class NoopReconciler : IReconciler
    {
        public Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct) => Task.FromResult(ReconcileResult.Done);
    }

    private sealed class OtherReconciler : IReconciler
    {
        public Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct) => Task.FromResult(ReconcileResult.Done);
    }
}
