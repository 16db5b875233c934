using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>
/// Create / update / delete with the apiserver's object semantics (Kubernetes API docs "API Concepts":
/// "Resource versions", "Efficient detection of changes"; "Object Names and IDs"; "Finalizers";
/// "Garbage Collection"; "Custom Resources" status subresource): uid, creationTimestamp, generation bumped
/// only by spec changes, resourceVersion conflicts, no-op updates that keep the resourceVersion, deletion
/// marked while finalizers remain, and owner-reference cascading.
/// </summary>
internal sealed partial class ObjectOperations(TestApiServerState state)
{
    private const string NameChars = "bcdfghjklmnpqrstvwxz2456789";

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex Dns1123Subdomain();

    public StoredObject Create(ResourceType type, string? ns, JsonObject body)
    {
        PrepareKind(type, body);
        var meta = MetaOf(body);
        if (type.Namespaced)
        {
            var bodyNs = meta["namespace"]?.GetValue<string>();
            if (ns is null)
            {
                throw ApiError.BadRequest("the namespace of the object is required on a namespaced resource; use the namespaced path");
            }
            if (!string.IsNullOrEmpty(bodyNs) && bodyNs != ns)
            {
                throw ApiError.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
            }
            meta["namespace"] = ns;
            CheckNamespaceAcceptsContent(ns);
        }
        else
        {
            meta.Remove("namespace");
        }
        var name = meta["name"]?.GetValue<string>();
        var generateName = meta["generateName"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name) && string.IsNullOrEmpty(generateName))
        {
            throw ApiError.Invalid(type, "", [new FieldError("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")]);
        }
        meta["uid"] = Guid.NewGuid().ToString();
        meta["creationTimestamp"] = state.Now();
        meta.Remove("deletionTimestamp");
        meta.Remove("deletionGracePeriodSeconds");
        meta.Remove("resourceVersion");
        if (type.HasGeneration)
        {
            meta["generation"] = 1;
        }
        else
        {
            meta.Remove("generation");
        }
        if (type.IsCustom && type.HasStatus)
        {
            // The apiserver drops status on create when the status subresource is enabled.
            body.Remove("status");
        }
        if (type.Plural == "namespaces" && type.Group.Length == 0)
        {
            body["status"] = new JsonObject { ["phase"] = "Active" };
        }
        if (type.Schema is not null)
        {
            var errors = SchemaValidator.Process(body, null, type.Schema);
            if (errors.Count > 0)
            {
                throw ApiError.Invalid(type, name ?? generateName ?? "", errors);
            }
        }
        var store = type.Store;
        lock (store.SyncRoot)
        {
            if (string.IsNullOrEmpty(name))
            {
                do
                {
                    name = generateName + new string([.. Enumerable.Range(0, 5).Select(_ => NameChars[Random.Shared.Next(NameChars.Length)])]);
                }
                while (store.Get(ns ?? "", name) is not null);
                meta["name"] = name;
            }
            ValidateName(type, name);
            if (store.Get(ns ?? "", name) is not null)
            {
                throw ApiError.AlreadyExists(type, name);
            }
            return store.CommitPutLocked(body, null);
        }
    }

    private void CheckNamespaceAcceptsContent(string ns)
    {
        if (!state.Options.RequireNamespaces)
        {
            return;
        }
        var nsType = state.Registry.Find("", "v1", "namespaces")!;
        var nsObj = nsType.Store.Get("", ns);
        if (nsObj is null)
        {
            throw ApiError.NotFound(nsType, ns);
        }
        if (nsObj.Deleting)
        {
            throw new ApiError(403, "Forbidden", $"unable to create new content in namespace {ns} because it is being terminated");
        }
    }

    private static void ValidateName(ResourceType type, string name)
    {
        if (name.Length > 253 || !Dns1123Subdomain().IsMatch(name))
        {
            throw ApiError.Invalid(type, name, [new FieldError("FieldValueInvalid", "metadata.name",
                $"Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")]);
        }
    }

    private static JsonObject MetaOf(JsonObject body)
    {
        switch (body["metadata"])
        {
            case null:
                var meta = new JsonObject();
                body["metadata"] = meta;
                return meta;
            case JsonObject o:
                CheckShapes(o);
                return o;
            default:
                throw ApiError.BadRequest("the object provided could not be decoded: metadata must be an object");
        }
    }

    /// <summary>ObjectMeta fields with fixed Go types refuse other JSON shapes, as the apiserver's decoder does.</summary>
    private static void CheckShapes(JsonObject meta)
    {
        static ApiError Bad(string field, string type) =>
            ApiError.BadRequest($"the object provided could not be decoded: metadata.{field} must be {type}");
        foreach (var field in (string[])["name", "generateName", "namespace", "resourceVersion", "uid"])
        {
            if (meta[field] is { } v && v.GetValueKind() != System.Text.Json.JsonValueKind.String)
            {
                throw Bad(field, "a string");
            }
        }
        foreach (var field in (string[])["labels", "annotations"])
        {
            if (meta[field] is { } v && (v is not JsonObject map || map.Any(kv => kv.Value?.GetValueKind() != System.Text.Json.JsonValueKind.String)))
            {
                throw Bad(field, "a map of strings");
            }
        }
        if (meta["finalizers"] is { } f && (f is not JsonArray fa || fa.Any(x => x?.GetValueKind() != System.Text.Json.JsonValueKind.String)))
        {
            throw Bad("finalizers", "a list of strings");
        }
        if (meta["ownerReferences"] is { } r && (r is not JsonArray ra || ra.Any(x => x is not JsonObject)))
        {
            throw Bad("ownerReferences", "a list of objects");
        }
    }

    private static void PrepareKind(ResourceType type, JsonObject body)
    {
        var kind = body["kind"]?.GetValue<string>();
        if (!string.IsNullOrEmpty(kind) && kind != type.Kind)
        {
            throw ApiError.BadRequest($"the object provided is unrecognized (must be of type {type.Kind}): kind {kind}");
        }
        body["kind"] = type.Kind;
        body["apiVersion"] = type.GroupVersion;
    }

    /// <summary>
    /// Replaces an object (PUT, or the result of a patch). <paramref name="change"/> gets a fresh copy of the
    /// current object and returns the proposed one. Runs under the store's lock so the read-modify-write is atomic.
    /// </summary>
    public StoredObject Update(ResourceType type, string ns, string name, bool statusOnly, Func<JsonObject, JsonObject> change, out bool deleted)
    {
        var store = type.Store;
        StoredObject result;
        deleted = false;
        lock (store.SyncRoot)
        {
            var cur = store.Get(ns, name) ?? throw ApiError.NotFound(type, name);
            var old = cur.Parse();
            var proposed = change(cur.Parse());
            PrepareKind(type, proposed);
            var pmeta = MetaOf(proposed);
            var proposedName = pmeta["name"]?.GetValue<string>();
            if (!string.IsNullOrEmpty(proposedName) && proposedName != name)
            {
                throw ApiError.BadRequest($"the name of the object ({proposedName}) does not match the name on the URL ({name})");
            }
            var rv = pmeta["resourceVersion"]?.GetValue<string>();
            if (!string.IsNullOrEmpty(rv) && rv != cur.ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                throw ApiError.Conflict(type, name);
            }
            var oldMeta = (JsonObject)old["metadata"]!;
            JsonObject next;
            if (statusOnly)
            {
                // PUT/PATCH on /status changes status alone (metadata and spec stay as stored).
                next = (JsonObject)old.DeepClone();
                if (proposed["status"] is { } st)
                {
                    next["status"] = st.DeepClone();
                }
                else
                {
                    next.Remove("status");
                }
            }
            else
            {
                next = proposed;
                foreach (var key in (string[])["uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name"])
                {
                    if (oldMeta[key] is { } v)
                    {
                        pmeta[key] = v.DeepClone();
                    }
                    else
                    {
                        pmeta.Remove(key);
                    }
                }
                if (type.HasStatus)
                {
                    // The main resource ignores status when a status subresource exists.
                    if (old["status"] is { } st)
                    {
                        next["status"] = st.DeepClone();
                    }
                    else
                    {
                        next.Remove("status");
                    }
                }
                if (oldMeta["deletionTimestamp"] is not null && pmeta["finalizers"] is JsonArray nf)
                {
                    var had = oldMeta["finalizers"] as JsonArray;
                    var added = nf.Select(f => f?.GetValue<string>()).Where(f => had is null || !had.Any(h => h?.GetValue<string>() == f)).ToList();
                    if (added.Count > 0)
                    {
                        throw new ApiError(422, "Invalid", $"{type.QualifiedKind} \"{name}\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{string.Join("\", \"", added)}\"}}",
                            new JsonObject { ["name"] = name, ["kind"] = type.Kind, ["causes"] = new JsonArray(new JsonObject { ["reason"] = "FieldValueForbidden", ["field"] = "metadata.finalizers", ["message"] = "Forbidden: no new finalizers can be added if the object is being deleted" }) });
                    }
                }
            }
            if (type.Schema is not null)
            {
                var errors = SchemaValidator.Process(next, old, type.Schema);
                if (errors.Count > 0)
                {
                    throw ApiError.Invalid(type, name, errors);
                }
            }
            var nextMeta = (JsonObject)next["metadata"]!;
            if (type.HasGeneration && SpecChanged(type, old, next))
            {
                var gen = oldMeta["generation"]?.GetValue<long>() ?? 1;
                nextMeta["generation"] = gen + 1;
            }
            nextMeta["resourceVersion"] = oldMeta["resourceVersion"]?.DeepClone();
            if (JsonNode.DeepEquals(next, old))
            {
                // A no-op update writes nothing and keeps the resourceVersion, as the apiserver does.
                return cur;
            }
            result = store.CommitPutLocked(next, cur);
            if (result.Deleting && result.FinalizerCount == 0)
            {
                result = store.CommitDeleteLocked(result);
                deleted = true;
            }
        }
        if (deleted)
        {
            AfterRemoval(type.Store, result);
        }
        return result;
    }

    /// <summary>generation moves when anything outside metadata (and status, where status is a subresource) changes.</summary>
    private static bool SpecChanged(ResourceType type, JsonObject old, JsonObject next)
    {
        foreach (var (k, v) in next)
        {
            if (k is "metadata" or "apiVersion" or "kind" || (type.HasStatus && k == "status"))
            {
                continue;
            }
            if (!JsonNode.DeepEquals(v, old[k]))
            {
                return true;
            }
        }
        foreach (var (k, _) in old)
        {
            if (k is "metadata" or "apiVersion" or "kind" || (type.HasStatus && k == "status"))
            {
                continue;
            }
            if (!next.ContainsKey(k))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>DELETE: marks the object while finalizers remain, otherwise removes it; then cascades.</summary>
    public StoredObject Delete(ResourceStore store, ResourceType? type, string ns, string name, string? propagation,
        string? preconditionUid = null, string? preconditionRv = null)
    {
        propagation ??= "Background";
        if (propagation is not ("Background" or "Foreground" or "Orphan"))
        {
            throw ApiError.BadRequest($"propagationPolicy: Unsupported value: \"{propagation}\": supported values: \"Foreground\", \"Background\", \"Orphan\"");
        }
        StoredObject result;
        var removed = false;
        lock (store.SyncRoot)
        {
            var cur = store.Get(ns, name);
            if (cur is null)
            {
                throw type is null ? ApiError.NotFound($"{store.Plural} \"{name}\" not found") : ApiError.NotFound(type, name);
            }
            if (preconditionUid is not null && preconditionUid != cur.Uid)
            {
                throw type is null ? ApiError.BadRequest("precondition failed") :
                    ApiError.Conflict(type, name, $"Precondition failed: UID in precondition: {preconditionUid}, UID in object meta: {cur.Uid}");
            }
            if (preconditionRv is not null && preconditionRv != cur.ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                throw type is null ? ApiError.BadRequest("precondition failed") :
                    ApiError.Conflict(type, name, $"Precondition failed: ResourceVersion in precondition: {preconditionRv}, ResourceVersion in object meta: {cur.ResourceVersion}");
            }
            var policyFinalizer = propagation switch
            {
                "Foreground" => "foregroundDeletion",
                "Orphan" => "orphan",
                _ => null,
            };
            var isNamespace = store.Group.Length == 0 && store.Plural == "namespaces";
            if (cur.FinalizerCount > 0 || policyFinalizer is not null || isNamespace)
            {
                if (cur.Deleting && policyFinalizer is null)
                {
                    return cur;
                }
                var obj = cur.Parse();
                var meta = (JsonObject)obj["metadata"]!;
                meta["deletionTimestamp"] ??= state.Now();
                meta["deletionGracePeriodSeconds"] = 0;
                if (policyFinalizer is not null)
                {
                    var fins = meta["finalizers"] as JsonArray ?? new JsonArray();
                    if (!fins.Any(f => f?.GetValue<string>() == policyFinalizer))
                    {
                        fins.Add(policyFinalizer);
                    }
                    meta["finalizers"] = fins;
                }
                if (isNamespace)
                {
                    obj["status"] = new JsonObject { ["phase"] = "Terminating" };
                }
                result = store.CommitPutLocked(obj, cur);
            }
            else
            {
                result = store.CommitDeleteLocked(cur);
                removed = true;
            }
        }
        if (removed)
        {
            AfterRemoval(store, result);
        }
        else if (propagation == "Orphan")
        {
            Orphan(result.Uid);
            RemoveFinalizer(store, ns, name, "orphan");
        }
        else if (propagation == "Foreground")
        {
            CascadeDependents(result.Uid);
            FinishForeground(result.Uid);
        }
        else if (store.Group.Length == 0 && store.Plural == "namespaces")
        {
            EmptyNamespace(name);
        }
        return result;
    }

    /// <summary>What follows the final removal of an object: dependents, foreground owners, namespace contents.</summary>
    private void AfterRemoval(ResourceStore store, StoredObject removed)
    {
        CascadeDependents(removed.Uid);
        foreach (var owner in removed.OwnerUids)
        {
            FinishForeground(owner);
        }
        if (store.Group.Length == 0 && store.Plural == "namespaces")
        {
            EmptyNamespace(removed.Name);
        }
        else if (removed.Namespace.Length > 0)
        {
            FinishNamespace(removed.Namespace);
        }
        if (store.Group == "apiextensions.k8s.io" && store.Plural == "customresourcedefinitions")
        {
            CrdRegistration.Remove(state, removed.Parse());
        }
    }

    /// <summary>
    /// Background cascade (Kubernetes docs "Garbage Collection", "Cascading deletion"): a dependent whose
    /// owners are all gone is deleted; one that still has a live owner loses the dangling reference.
    /// </summary>
    private void CascadeDependents(string ownerUid)
    {
        if (!state.Dependents.TryGetValue(ownerUid, out var deps))
        {
            return;
        }
        foreach (var (store, ns, name) in deps.Keys.ToList())
        {
            var dep = store.Get(ns, name);
            if (dep is null || !dep.OwnerUids.Contains(ownerUid))
            {
                continue;
            }
            var ownerAlive = state.ByUid.TryGetValue(ownerUid, out var where) && where.Store.Get(where.Ns, where.Name) is { Deleting: false };
            if (ownerAlive)
            {
                continue;
            }
            var otherLive = dep.OwnerUids.Any(u => u != ownerUid && state.ByUid.ContainsKey(u));
            try
            {
                if (otherLive)
                {
                    RemoveOwnerRef(store, ns, name, ownerUid);
                }
                else
                {
                    Delete(store, null, ns, name, "Background");
                }
            }
            catch (ApiError e) when (e.Code == 404)
            {
                // Removed meanwhile.
            }
        }
        if (deps.IsEmpty)
        {
            state.Dependents.TryRemove(ownerUid, out _);
        }
    }

    private void Orphan(string ownerUid)
    {
        if (!state.Dependents.TryGetValue(ownerUid, out var deps))
        {
            return;
        }
        foreach (var (store, ns, name) in deps.Keys.ToList())
        {
            RemoveOwnerRef(store, ns, name, ownerUid);
        }
    }

    private void FinishForeground(string ownerUid)
    {
        if (!state.ByUid.TryGetValue(ownerUid, out var where))
        {
            return;
        }
        var owner = where.Store.Get(where.Ns, where.Name);
        if (owner is not { Deleting: true })
        {
            return;
        }
        var hasDependents = state.Dependents.TryGetValue(ownerUid, out var deps) && deps.Keys.Any(d => d.Store.Get(d.Ns, d.Name) is not null);
        if (!hasDependents)
        {
            RemoveFinalizer(where.Store, where.Ns, where.Name, "foregroundDeletion");
        }
    }

    private void EmptyNamespace(string ns)
    {
        foreach (var store in state.Registry.Stores.ToList())
        {
            var (items, _) = store.List(ns, null);
            foreach (var o in items)
            {
                if (o.Namespace.Length == 0)
                {
                    continue;
                }
                try
                {
                    Delete(store, null, o.Namespace, o.Name, "Background");
                }
                catch (ApiError e) when (e.Code == 404)
                {
                }
            }
        }
        FinishNamespace(ns);
    }

    private void FinishNamespace(string ns)
    {
        var nsStore = state.Registry.Find("", "v1", "namespaces")!.Store;
        if (nsStore.Get("", ns) is not { Deleting: true })
        {
            return;
        }
        if (state.Registry.Stores.Any(s => s != nsStore && s.CountInNamespace(ns) > 0))
        {
            return;
        }
        StoredObject? removed = null;
        lock (nsStore.SyncRoot)
        {
            if (nsStore.Get("", ns) is { Deleting: true, FinalizerCount: 0 } cur)
            {
                removed = nsStore.CommitDeleteLocked(cur);
            }
        }
        if (removed is not null)
        {
            CascadeDependents(removed.Uid);
        }
    }

    private void RemoveOwnerRef(ResourceStore store, string ns, string name, string ownerUid) =>
        Mutate(store, ns, name, obj =>
        {
            if (obj["metadata"]?["ownerReferences"] is JsonArray refs)
            {
                for (var i = refs.Count - 1; i >= 0; i--)
                {
                    if (refs[i]?["uid"]?.GetValue<string>() == ownerUid)
                    {
                        refs.RemoveAt(i);
                    }
                }
                if (refs.Count == 0)
                {
                    ((JsonObject)obj["metadata"]!).Remove("ownerReferences");
                }
            }
        });

    private void RemoveFinalizer(ResourceStore store, string ns, string name, string finalizer) =>
        Mutate(store, ns, name, obj =>
        {
            if (obj["metadata"]?["finalizers"] is JsonArray fins)
            {
                for (var i = fins.Count - 1; i >= 0; i--)
                {
                    if (fins[i]?.GetValue<string>() == finalizer)
                    {
                        fins.RemoveAt(i);
                    }
                }
                if (fins.Count == 0)
                {
                    ((JsonObject)obj["metadata"]!).Remove("finalizers");
                }
            }
        });

    /// <summary>A system-side change (GC): no validation, removal when a deleting object loses its last finalizer.</summary>
    private void Mutate(ResourceStore store, string ns, string name, Action<JsonObject> change)
    {
        StoredObject? removed = null;
        lock (store.SyncRoot)
        {
            var cur = store.Get(ns, name);
            if (cur is null)
            {
                return;
            }
            var obj = cur.Parse();
            change(obj);
            var after = store.CommitPutLocked(obj, cur);
            if (after.Deleting && after.FinalizerCount == 0)
            {
                removed = store.CommitDeleteLocked(after);
            }
        }
        if (removed is not null)
        {
            AfterRemoval(store, removed);
        }
    }
}
