using k8s.Models;
using KServe.Node.CacheController.Model;

namespace KServe.Node.CacheController.Tests.Unit;

public sealed class NamingAndVolumeTests
{
    private static readonly CacheRef Cluster = CacheRef.Cluster("iris");
    private static readonly CacheRef Namespaced = CacheRef.Namespaced("team", "iris");

    [Fact]
    public void Names_follow_KServe_exactly()
    {
        Assert.Equal("iris-gpu1-download", Naming.DownloadPv(Cluster, "gpu1"));
        Assert.Equal("iris-gpu1", Naming.DownloadPvc(Cluster, "gpu1"));
        Assert.Equal("iris-gpu1-default", Naming.ServingPv(Cluster, "gpu1", "default"));
        Assert.Equal("iris-gpu1", Naming.ServingPvc(Cluster, "gpu1"));

        Assert.Equal("iris-gpu1-team-download", Naming.DownloadPv(Namespaced, "gpu1"));
        Assert.Equal("iris-gpu1-team-download", Naming.DownloadPvc(Namespaced, "gpu1"));
        Assert.Equal("iris-gpu1-team", Naming.ServingPv(Namespaced, "gpu1", "team"));
        Assert.Equal("iris-gpu1", Naming.ServingPvc(Namespaced, "gpu1"));
        Assert.Equal("node-1", Naming.LocalModelNode("node-1"));
        Assert.Equal("team/iris", Namespaced.StatusKey);
        Assert.Equal("iris", Cluster.StatusKey);
    }

    private static V1PersistentVolumeSpec PvTemplate() => new()
    {
        AccessModes = ["ReadWriteOnce"],
        Capacity = new Dictionary<string, ResourceQuantity> { ["storage"] = new("2Gi") },
        StorageClassName = "standard",
        HostPath = new V1HostPathVolumeSource { Path = "/models" },
    };

    private static V1PersistentVolumeClaimSpec PvcTemplate() => new()
    {
        AccessModes = ["ReadWriteOnce"],
        StorageClassName = "standard",
        Resources = new V1VolumeResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["storage"] = new("2Gi") } },
    };

    [Fact]
    public void Cluster_cache_owns_its_download_and_serving_volumes()
    {
        var owner = new CacheOwner(Cluster, "uid-1");
        var pv = VolumeBuilder.DownloadPv(owner, "gpu1", PvTemplate());
        var pvc = VolumeBuilder.DownloadPvc(owner, "gpu1", "kserve-localmodel-jobs", PvcTemplate());
        Assert.Equal("iris-gpu1-download", pv.Metadata.Name);
        Assert.Equal("/models", pv.Spec.HostPath.Path);
        var reference = Assert.Single(pv.Metadata.OwnerReferences);
        Assert.Equal(("serving.kserve.io/v1alpha1", "LocalModelCache", "iris", "uid-1", true), (reference.ApiVersion, reference.Kind, reference.Name, reference.Uid, reference.Controller!.Value));
        Assert.Equal("kserve-localmodel-jobs", pvc.Metadata.NamespaceProperty);
        Assert.Equal("iris-gpu1-download", pvc.Spec.VolumeName);
        Assert.Single(pvc.Metadata.OwnerReferences);

        var spv = VolumeBuilder.ServingPv(owner, "gpu2", "default", PvTemplate());
        var spvc = VolumeBuilder.ServingPvc(owner, "gpu2", "default", PvcTemplate());
        Assert.Equal("iris-gpu2-default", spv.Metadata.Name);
        Assert.Single(spv.Metadata.OwnerReferences);
        Assert.Equal(("default", "iris-gpu2", "iris-gpu2-default"), (spvc.Metadata.NamespaceProperty, spvc.Metadata.Name, spvc.Spec.VolumeName));
    }

    [Fact]
    public void Namespace_cache_owns_only_what_lives_in_its_namespace()
    {
        var owner = new CacheOwner(Namespaced, "uid-2");
        Assert.Null(VolumeBuilder.DownloadPv(owner, "gpu1", PvTemplate()).Metadata.OwnerReferences);
        Assert.Null(VolumeBuilder.DownloadPvc(owner, "gpu1", "kserve-localmodel-jobs", PvcTemplate()).Metadata.OwnerReferences);
        Assert.Single(VolumeBuilder.DownloadPvc(owner, "gpu1", "team", PvcTemplate()).Metadata.OwnerReferences);
        Assert.Null(VolumeBuilder.ServingPv(owner, "gpu1", "team", PvTemplate()).Metadata.OwnerReferences);
        var spvc = VolumeBuilder.ServingPvc(owner, "gpu1", "team", PvcTemplate());
        Assert.Equal("LocalModelNamespaceCache", Assert.Single(spvc.Metadata.OwnerReferences).Kind);
        Assert.Equal("iris-gpu1-team", spvc.Spec.VolumeName);
        var pv = VolumeBuilder.DownloadPv(owner, "gpu1", PvTemplate());
        Assert.Equal("team", pv.Metadata.Labels[VolumeBuilder.CacheNamespaceLabel]);
        Assert.Equal("iris", pv.Metadata.Labels[VolumeBuilder.CacheLabel]);
    }

    [Fact]
    public void Templates_are_copied_not_shared()
    {
        var template = PvcTemplate();
        var pvc = VolumeBuilder.DownloadPvc(new CacheOwner(Cluster, "u"), "gpu1", "jobs", template);
        Assert.Null(template.VolumeName);
        Assert.NotSame(template.AccessModes, pvc.Spec.AccessModes);
    }
}
