using System.Text.Json.Nodes;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>Turns a stored CustomResourceDefinition into served resource types (and back).</summary>
internal static class CrdRegistration
{
    /// <summary>Checks what the apiserver would refuse outright before a CRD is stored.</summary>
    public static void Validate(ResourceType crdType, JsonObject crd)
    {
        var errors = new List<FieldError>();
        var spec = crd["spec"] as JsonObject;
        var name = crd["metadata"]?["name"]?.GetValue<string>() ?? "";
        var group = spec?["group"]?.GetValue<string>();
        var plural = spec?["names"]?["plural"]?.GetValue<string>();
        if (string.IsNullOrEmpty(group))
        {
            errors.Add(new FieldError("FieldValueRequired", "spec.group", "Required value"));
        }
        if (string.IsNullOrEmpty(plural))
        {
            errors.Add(new FieldError("FieldValueRequired", "spec.names.plural", "Required value"));
        }
        if (string.IsNullOrEmpty(spec?["names"]?["kind"]?.GetValue<string>()))
        {
            errors.Add(new FieldError("FieldValueRequired", "spec.names.kind", "Required value"));
        }
        if (spec?["versions"] is not JsonArray { Count: > 0 })
        {
            errors.Add(new FieldError("FieldValueRequired", "spec.versions", "Required value: must have at least one version"));
        }
        if (errors.Count == 0 && name != $"{plural}.{group}")
        {
            errors.Add(new FieldError("FieldValueInvalid", "metadata.name", $"Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"));
        }
        if (errors.Count > 0)
        {
            throw ApiError.Invalid(crdType, name, errors);
        }
    }

    public static void Apply(TestApiServerState state, JsonObject crd)
    {
        var spec = (JsonObject)crd["spec"]!;
        var group = spec["group"]!.GetValue<string>();
        var names = (JsonObject)spec["names"]!;
        var plural = names["plural"]!.GetValue<string>();
        var kind = names["kind"]!.GetValue<string>();
        var singular = names["singular"]?.GetValue<string>() ?? kind.ToLowerInvariant();
        var namespaced = spec["scope"]?.GetValue<string>() != "Cluster";
        string[] shortNames = names["shortNames"] is JsonArray sn ? [.. sn.Select(s => s!.GetValue<string>())] : [];
        string[] categories = names["categories"] is JsonArray cat ? [.. cat.Select(s => s!.GetValue<string>())] : [];
        var store = state.Registry.StoreFor(group, plural);
        var served = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in (JsonArray)spec["versions"]!)
        {
            if (v is not JsonObject version || version["served"]?.GetValue<bool>() == false)
            {
                continue;
            }
            var vname = version["name"]!.GetValue<string>();
            served.Add(vname);
            string[] selectable = version["selectableFields"] is JsonArray sf
                ? [.. sf.Select(f => f?["jsonPath"]?.GetValue<string>()?.TrimStart('.')).Where(f => f is not null).Select(f => f!)]
                : [];
            state.Registry.Register(new ResourceType
            {
                Group = group,
                Version = vname,
                Kind = kind,
                Plural = plural,
                Singular = singular,
                Namespaced = namespaced,
                ShortNames = shortNames,
                Categories = categories,
                HasStatus = version["subresources"]?["status"] is not null,
                HasGeneration = true,
                IsCustom = true,
                Schema = (version["schema"]?["openAPIV3Schema"] as JsonObject)?.DeepClone() as JsonObject,
                PrinterColumns = (version["additionalPrinterColumns"] as JsonArray)?.DeepClone() as JsonArray,
                SelectableFields = selectable,
                Store = store,
            });
        }
        state.Registry.RemoveVersionsExcept(group, plural, served);
    }

    public static void Remove(TestApiServerState state, JsonObject crd)
    {
        var group = crd["spec"]?["group"]?.GetValue<string>();
        var plural = crd["spec"]?["names"]?["plural"]?.GetValue<string>();
        if (group is not null && plural is not null)
        {
            state.Registry.Unregister(group, plural);
        }
    }

    /// <summary>The status the apiserver gives an accepted CRD (Established, NamesAccepted, acceptedNames).</summary>
    public static JsonObject EstablishedStatus(JsonObject crd, string now)
    {
        var spec = (JsonObject)crd["spec"]!;
        JsonObject Condition(string type, string reason, string message) => new()
        {
            ["type"] = type,
            ["status"] = "True",
            ["lastTransitionTime"] = now,
            ["reason"] = reason,
            ["message"] = message,
        };
        var names = (JsonObject)spec["names"]!.DeepClone();
        names["singular"] ??= names["kind"]!.GetValue<string>().ToLowerInvariant();
        names["listKind"] ??= names["kind"]!.GetValue<string>() + "List";
        return new JsonObject
        {
            ["acceptedNames"] = names,
            ["conditions"] = new JsonArray(
                Condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                Condition("Established", "InitialNamesAccepted", "the initial names have been accepted")),
            ["storedVersions"] = new JsonArray([.. ((JsonArray)spec["versions"]!).Where(v => v?["storage"]?.GetValue<bool>() == true).Select(v => (JsonNode?)v!["name"]!.GetValue<string>())]),
        };
    }
}
