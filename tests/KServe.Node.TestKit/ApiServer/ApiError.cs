using System.Text.Json.Nodes;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>A field error as the apiserver reports it in details.causes.</summary>
internal sealed record FieldError(string Reason, string Field, string Message)
{
    /// <summary>"spec.x: Invalid value: 3: ..." — the form the apiserver joins into the Status message.</summary>
    public override string ToString() => $"{Field}: {Message}";
}

/// <summary>
/// An error answered as a Kubernetes Status object. Reasons and messages follow the apiserver's
/// (k8s.io/apimachinery/pkg/api/errors: NewNotFound, NewAlreadyExists, NewConflict, NewInvalid, NewGone).
/// </summary>
internal sealed class ApiError : Exception
{
    public ApiError(int code, string reason, string message, JsonObject? details = null) : base(message)
    {
        Code = code;
        Reason = reason;
        Details = details;
    }

    public int Code { get; }
    public string Reason { get; }
    public JsonObject? Details { get; }

    public JsonObject ToStatus() => Status(Code, Reason, Message, Details);

    public static JsonObject Status(int code, string reason, string message, JsonObject? details)
    {
        var s = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
        };
        if (details is not null)
        {
            s["details"] = details;
        }
        s["code"] = code;
        return s;
    }

    private static JsonObject NameDetails(ResourceType t, string? name)
    {
        var d = new JsonObject();
        if (name is not null)
        {
            d["name"] = name;
        }
        if (t.Group.Length > 0)
        {
            d["group"] = t.Group;
        }
        d["kind"] = t.Plural;
        return d;
    }

    public static ApiError NotFound(ResourceType t, string name) =>
        new(404, "NotFound", $"{t.QualifiedResource} \"{name}\" not found", NameDetails(t, name));

    public static ApiError NotFound(string message) => new(404, "NotFound", message);

    public static ApiError AlreadyExists(ResourceType t, string name) =>
        new(409, "AlreadyExists", $"{t.QualifiedResource} \"{name}\" already exists", NameDetails(t, name));

    public static ApiError Conflict(ResourceType t, string name, string why = "the object has been modified; please apply your changes to the latest version and try again") =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {t.QualifiedResource} \"{name}\": {why}", NameDetails(t, name));

    public static ApiError BadRequest(string message) => new(400, "BadRequest", message);

    public static ApiError MethodNotSupported(ResourceType t, string verb) =>
        new(405, "MethodNotAllowed", $"{verb} is not supported on resources of kind \"{t.QualifiedResource}\"", NameDetails(t, null));

    public static ApiError UnsupportedMediaType(string contentType, string accepted) =>
        new(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: {accepted}",
            new JsonObject { ["causes"] = new JsonArray(new JsonObject { ["reason"] = "UnexpectedServerResponse", ["message"] = contentType }) });

    /// <summary>422 Invalid: "Kind.group \"name\" is invalid: field: message" (several errors joined in brackets).</summary>
    public static ApiError Invalid(ResourceType t, string name, IReadOnlyList<FieldError> errors)
    {
        var joined = errors.Count == 1 ? errors[0].ToString() : "[" + string.Join(", ", errors) + "]";
        var causes = new JsonArray();
        foreach (var e in errors)
        {
            causes.Add(new JsonObject { ["reason"] = e.Reason, ["message"] = e.Message, ["field"] = e.Field });
        }
        var details = new JsonObject { ["name"] = name };
        if (t.Group.Length > 0)
        {
            details["group"] = t.Group;
        }
        details["kind"] = t.Kind;
        details["causes"] = causes;
        return new ApiError(422, "Invalid", $"{t.QualifiedKind} \"{name}\" is invalid: {joined}", details);
    }
}
