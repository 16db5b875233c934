using System.Text;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using KServe.Node.Agent.Sources;
using KServe.Node.Api.V1Alpha1;
using Microsoft.Extensions.Logging;

namespace KServe.Node.Agent.Kubernetes;

/// <summary>
/// Resolves the download settings of a <c>LocalModelNode</c> entry the way KServe injects them into its
/// download Job (spec §3.8, §5.2), but into the agent's own settings instead of a pod's env: with
/// <c>storage.key</c>, the storage-config secret's JSON (plus <c>storage.parameters</c>); otherwise the
/// secrets attached to the ServiceAccount (<c>serviceAccountName</c> or <c>default</c>) in the job
/// namespace. A failure to resolve is logged and the download goes ahead with what there is, as KServe does.
/// Values are never logged.
/// Unlike KServe, a namespace cache gets the job namespace's credentials only where an admin released them to its
/// namespace: the annotation <see cref="NamespacesAnnotation"/> (<c>team-a,team-b</c>, or <c>*</c>) on the
/// ServiceAccount, or on the storage-config Secret. Otherwise any tenant could name any ServiceAccount there and pull
/// what only the cluster's admins may read into the shared cache.
/// </summary>
internal sealed partial class CredentialResolver(IKubernetes client, AgentNodeSettings node, ILogger<CredentialResolver> logger)
{
    private const string S3Annotation = "serving.kserve.io/";

    /// <summary>The namespaces whose namespace caches may use a ServiceAccount's or storage-config Secret's credentials.</summary>
    public const string NamespacesAnnotation = "kserve-node.io/credential-namespaces";

    private static readonly (string Json, string Env)[] StorageSpecKeys =
    [
        ("endpoint_url", "AWS_ENDPOINT_URL"), ("access_key_id", "AWS_ACCESS_KEY_ID"), ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
        ("region", "AWS_DEFAULT_REGION"), ("ca_bundle", "AWS_CA_BUNDLE"), ("verify_ssl", "S3_VERIFY_SSL"), ("anonymous", "awsAnonymousCredential"),
    ];

    private static readonly (string Annotation, string Env)[] S3Options =
    [
        ("s3-endpoint", "S3_ENDPOINT"), ("s3-usehttps", "S3_USE_HTTPS"), ("s3-verifyssl", "S3_VERIFY_SSL"), ("s3-region", "AWS_DEFAULT_REGION"),
        ("s3-usevirtualbucket", "S3_USER_VIRTUAL_BUCKET"), ("s3-useaccelerate", "S3_USE_ACCELERATE"), ("s3-useanoncredential", "awsAnonymousCredential"),
        ("s3-cabundle", "AWS_CA_BUNDLE"),
    ];

    public async Task<SourceSettings> ResolveAsync(LocalModelInfo entry, SourceSettings baseSettings, CancellationToken ct)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            if (entry.Storage?.Key is { Length: > 0 } key)
            {
                await FromStorageSpecAsync(entry, key, entry.Storage.Parameters, values, ct).ConfigureAwait(false);
            }
            else
            {
                await FromServiceAccountAsync(entry, entry.ServiceAccountName is { Length: > 0 } sa ? sa : "default", values, ct).ConfigureAwait(false);
            }
        }
        catch (HttpOperationException e)
        {
            LogResolveFailed(logger, entry.StatusKey, (int)e.Response.StatusCode);
        }
        return baseSettings.With(values);
    }

    /// <summary>Whether credentials carrying <paramref name="meta"/> may serve <paramref name="entry"/> (always, for a cluster cache).</summary>
    private bool Released(LocalModelInfo entry, V1ObjectMeta? meta, string kind, string name)
    {
        if (entry.Namespace is not { Length: > 0 } ns)
        {
            return true;
        }
        var allowed = meta?.Annotations?.Lookup(NamespacesAnnotation)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) ?? [];
        if (allowed.Contains("*") || allowed.Contains(ns))
        {
            return true;
        }
        LogWithheld(logger, entry.StatusKey, kind, name, node.JobNamespace, ns);
        return false;
    }

    private async Task FromStorageSpecAsync(LocalModelInfo entry, string key, IDictionary<string, string>? parameters, Dictionary<string, string> values, CancellationToken ct)
    {
        var secret = await client.CoreV1.ReadNamespacedSecretAsync(node.StorageSpecSecretName, node.JobNamespace, cancellationToken: ct).ConfigureAwait(false);
        if (!Released(entry, secret.Metadata, "Secret", node.StorageSpecSecretName))
        {
            return;
        }
        if (secret.Data?.TryGetValue(key, out var raw) != true || raw is null)
        {
            LogMissingKey(logger, node.StorageSpecSecretName, key);
            return;
        }
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            foreach (var p in JsonDocument.Parse(raw).RootElement.EnumerateObject())
            {
                merged[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
            }
        }
        catch (JsonException)
        {
            LogMissingKey(logger, node.StorageSpecSecretName, key);
            return;
        }
        foreach (var (k, v) in parameters ?? new Dictionary<string, string>())
        {
            merged[k] = v;
        }
        foreach (var (json, env) in StorageSpecKeys)
        {
            if (merged.TryGetValue(json, out var v) && v.Length > 0)
            {
                values[env] = v;
            }
        }
    }

    private async Task FromServiceAccountAsync(LocalModelInfo entry, string name, Dictionary<string, string> values, CancellationToken ct)
    {
        V1ServiceAccount sa;
        try
        {
            sa = await client.CoreV1.ReadNamespacedServiceAccountAsync(name, node.JobNamespace, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return;
        }
        if (!Released(entry, sa.Metadata, "ServiceAccount", name))
        {
            return;
        }
        foreach (var r in sa.Secrets ?? [])
        {
            if (r.Name is not { Length: > 0 } secretName)
            {
                continue;
            }
            V1Secret secret;
            try
            {
                secret = await client.CoreV1.ReadNamespacedSecretAsync(secretName, node.JobNamespace, cancellationToken: ct).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                continue;
            }
            Apply(secret, sa, values);
        }
    }

    /// <summary>The first matching rule of §5.2 wins per secret.</summary>
    internal static void Apply(V1Secret secret, V1ServiceAccount? sa, Dictionary<string, string> values)
    {
        var data = secret.Data ?? new Dictionary<string, byte[]>();
        string? Get(string k) => data.TryGetValue(k, out var b) && b is not null ? Encoding.UTF8.GetString(b) : null;
        if (Get("AWS_SECRET_ACCESS_KEY") is { } awsSecret || Get("awsSecretAccessKey") is { } legacy && (awsSecret = legacy) is not null)
        {
            values["AWS_SECRET_ACCESS_KEY"] = awsSecret;
            if ((Get("AWS_ACCESS_KEY_ID") ?? Get("awsAccessKeyID")) is { } id)
            {
                values["AWS_ACCESS_KEY_ID"] = id;
            }
            foreach (var (annotation, env) in S3Options)
            {
                var v = secret.Metadata?.Annotations?.Lookup(S3Annotation + annotation)
                    ?? sa?.Metadata?.Annotations?.Lookup(S3Annotation + annotation)
                    ?? Get(env);
                if (!string.IsNullOrEmpty(v))
                {
                    values[env] = v;
                }
            }
            if (values.TryGetValue("S3_ENDPOINT", out var ep) && (ep.StartsWith("http://", StringComparison.Ordinal) || ep.StartsWith("https://", StringComparison.Ordinal)))
            {
                values["AWS_ENDPOINT_URL"] = ep;
            }
            return;
        }
        if (Get("HF_TOKEN") is { } hf)
        {
            values["HF_TOKEN"] = hf;
            return;
        }
        if (Get("https-host") is { } host && Get("headers") is { } headers)
        {
            values[$"{host}-headers"] = headers;
            return;
        }
        if (Get("GCS_ACCESS_KEY_ID") is { } gid && Get("GCS_SECRET_ACCESS_KEY") is { } gsecret)
        {
            values["GCS_ACCESS_KEY_ID"] = gid;
            values["GCS_SECRET_ACCESS_KEY"] = gsecret;
        }
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Warning, Message = "Credentials for {StatusKey} could not be read (HTTP {Status}); downloading without them")]
    private static partial void LogResolveFailed(ILogger logger, string statusKey, int status);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Warning, Message = "Credentials for {StatusKey} withheld: {Kind} {Name} in {JobNamespace} is not released to namespace {Namespace} (annotation " + NamespacesAnnotation + ")")]
    private static partial void LogWithheld(ILogger logger, string statusKey, string kind, string name, string jobNamespace, string @namespace);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Warning, Message = "Secret {Secret} has no usable key {Key}")]
    private static partial void LogMissingKey(ILogger logger, string secret, string key);
}

internal static class DictionaryLookup
{
    /// <summary>GetValueOrDefault for the IDictionary properties of the Kubernetes models.</summary>
    public static TValue? Lookup<TValue>(this IDictionary<string, TValue>? map, string key) =>
        map is not null && map.TryGetValue(key, out var v) ? v : default;
}
