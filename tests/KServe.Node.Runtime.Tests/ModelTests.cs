using System.Buffers;
using System.Net;
using System.Text;
using k8s;
using k8s.Models;
using KServe.Node.Runtime;

namespace KServe.Node.Runtime.Tests;

public sealed class ModelTests
{
    [Fact]
    public void ResourceType_comes_from_the_KubernetesEntity_attribute_with_REST_paths()
    {
        var cm = ResourceType.Of<V1ConfigMap>();
        Assert.Equal(new ResourceType("", "v1", "configmaps", "ConfigMap", true), cm);
        Assert.Equal("/api/v1/namespaces/a/configmaps/b", cm.ObjectPath("a", "b"));
        Assert.Equal("/api/v1/configmaps", cm.CollectionPath(null));

        var node = ResourceType.Of<V1Node>();
        Assert.False(node.Namespaced);
        Assert.Equal("/api/v1/nodes/n1", node.ObjectPath(null, "n1"));

        var deploy = ResourceType.Of<V1Deployment>();
        Assert.Equal("apps/v1", deploy.ApiVersion);
        Assert.Equal("/apis/apps/v1/namespaces/x/deployments", deploy.CollectionPath("x"));
        Assert.True(deploy.Matches("apps/v1", "Deployment"));
        Assert.False(deploy.Matches("v1", "Deployment"));

        Assert.Throws<ArgumentException>(() => cm.ObjectPath(null, "b"));
    }

    [Fact]
    public void ObjectKey_formats_and_parses()
    {
        Assert.Equal("ns/a", new ObjectKey("ns", "a").ToString());
        Assert.Equal("node-1", ObjectKey.Cluster("node-1").ToString());
        Assert.Equal(new ObjectKey("ns", "a"), ObjectKey.Parse("ns/a"));
        Assert.Equal(new ObjectKey(null, "a"), ObjectKey.Parse("a"));
        Assert.Equal(new ObjectKey(null, "n"), ObjectKey.From(new V1Node { Metadata = new V1ObjectMeta { Name = "n" } }));
    }

    [Fact]
    public void OwnerReferences_Set_adds_one_controller_reference_and_refuses_a_second_controller()
    {
        var owner = new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "owner", NamespaceProperty = "ns", Uid = "u1" } };
        var child = new V1Secret { Metadata = new V1ObjectMeta { Name = "child", NamespaceProperty = "ns" } };

        Assert.True(OwnerReferences.Set(child, owner));
        Assert.False(OwnerReferences.Set(child, owner));
        var reference = Assert.Single(child.Metadata.OwnerReferences);
        Assert.Equal(("v1", "ConfigMap", "owner", "u1", true), (reference.ApiVersion, reference.Kind, reference.Name, reference.Uid, reference.Controller == true));
        Assert.True(OwnerReferences.IsControlledBy(child, owner));

        var other = new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "other", NamespaceProperty = "ns", Uid = "u2" } };
        Assert.Throws<InvalidOperationException>(() => OwnerReferences.Set(child, other));
        Assert.True(OwnerReferences.Set(child, other, controller: false));

        var elsewhere = new V1Secret { Metadata = new V1ObjectMeta { Name = "x", NamespaceProperty = "other-ns" } };
        Assert.Throws<ArgumentException>(() => OwnerReferences.Set(elsewhere, owner));
    }

    [Fact]
    public void Watch_lines_parse_in_one_pass_and_an_ERROR_event_becomes_a_410_exception()
    {
        var added = Parse("""{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"ns","resourceVersion":"7"},"data":{"k":"v"}}}""");
        Assert.Equal(WatchEventType.Added, added.Type);
        Assert.Equal("v", added.Object.Data["k"]);

        var bookmark = Parse("""{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"42"}}}""");
        Assert.Equal(WatchEventType.Bookmark, bookmark.Type);
        Assert.Equal("42", bookmark.Object.Metadata.ResourceVersion);

        var gone = Assert.Throws<KubernetesApiException>(() => Parse(
            """{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"""));
        Assert.True(gone.IsGone);
        Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
    }

    [Fact]
    public void ObjectCopy_Clone_is_deep()
    {
        var cm = new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "a", Labels = new Dictionary<string, string> { ["x"] = "1" } } };
        var copy = ObjectCopy.Clone(cm);
        copy.Metadata.Labels["x"] = "2";
        Assert.Equal("1", cm.Metadata.Labels["x"]);
    }

    private static WatchEvent<V1ConfigMap> Parse(string line) =>
        ResourceClient<V1ConfigMap>.ParseEvent(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(line)));
}

public sealed class PredicateTests
{
    [Fact]
    public void Update_predicates_pass_only_real_changes_while_adds_and_deletes_always_pass()
    {
        static V1Node Node(long generation, string zone) => new()
        {
            Metadata = new V1ObjectMeta { Name = "n", Generation = generation, Labels = new Dictionary<string, string> { ["zone"] = zone } },
        };

        var labels = Predicates.LabelsChanged<V1Node>();
        var generation = Predicates.GenerationChanged<V1Node>();
        Assert.False(labels(new ResourceEvent<V1Node>(ResourceEventType.Updated, Node(1, "a"), Node(1, "a"))));
        Assert.True(labels(new ResourceEvent<V1Node>(ResourceEventType.Updated, Node(1, "b"), Node(1, "a"))));
        Assert.False(generation(new ResourceEvent<V1Node>(ResourceEventType.Updated, Node(1, "b"), Node(1, "a"))));
        Assert.True(generation(new ResourceEvent<V1Node>(ResourceEventType.Updated, Node(2, "a"), Node(1, "a"))));
        Assert.True(labels(new ResourceEvent<V1Node>(ResourceEventType.Added, Node(1, "a"))));
        Assert.True(generation(new ResourceEvent<V1Node>(ResourceEventType.Deleted, Node(1, "a"))));
        Assert.True(Predicates.Any(labels, generation)(new ResourceEvent<V1Node>(ResourceEventType.Updated, Node(2, "a"), Node(1, "a"))));
    }
}
