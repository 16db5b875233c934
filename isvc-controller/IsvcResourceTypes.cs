using KServe.Node.Api.V1Alpha1;
using KServe.Node.Runtime;

namespace KServe.Node.IsvcController;

/// <summary>Declares the scope of the cluster-scoped CRD kinds this controller reads (the attribute does not say).</summary>
internal static class IsvcResourceTypes
{
    public static void Register()
    {
        ResourceType.Register<LocalModelCache>(namespaced: false);
        ResourceType.Register<LocalModelNode>(namespaced: false);
        ResourceType.Register<LocalModelNodeGroup>(namespaced: false);
    }
}
