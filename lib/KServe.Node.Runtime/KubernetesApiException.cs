using System.Net;
using k8s.Models;

namespace KServe.Node.Runtime;

/// <summary>An error answer from the Kubernetes API server, with its HTTP status and (when sent) its Status object.</summary>
public sealed class KubernetesApiException : Exception
{
    public KubernetesApiException()
    {
    }

    public KubernetesApiException(string message) : base(message)
    {
    }

    public KubernetesApiException(string message, Exception innerException) : base(message, innerException)
    {
    }

    public KubernetesApiException(HttpStatusCode statusCode, V1Status? status, string message)
        : base(message)
    {
        StatusCode = statusCode;
        Status = status;
    }

    /// <summary>The HTTP status code (or the Status code of a watch ERROR event).</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The Status object the server sent, if any.</summary>
    public V1Status? Status { get; }

    /// <summary>The Status reason (NotFound, AlreadyExists, Conflict, Expired, ...), if any.</summary>
    public string? Reason => Status?.Reason;

    public bool IsNotFound => StatusCode == HttpStatusCode.NotFound;

    public bool IsConflict => StatusCode == HttpStatusCode.Conflict && !IsAlreadyExists;

    public bool IsAlreadyExists => StatusCode == HttpStatusCode.Conflict && Reason == "AlreadyExists";

    /// <summary>410 Gone: the requested resourceVersion was compacted away; relist.</summary>
    public bool IsGone => StatusCode == HttpStatusCode.Gone || Reason is "Expired" or "Gone";
}
