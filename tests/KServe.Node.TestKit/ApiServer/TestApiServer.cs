using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using k8s;
using KServe.Node.Api.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KServe.Node.TestKit.ApiServer;

/// <summary>
/// An in-memory stand-in for kube-apiserver on loopback HTTP, for tests and the standalone runner.
/// KubernetesClient and kubectl talk to it as to a cluster: CRUD, patch, status subresources,
/// resourceVersion conflicts, generations, selectors, watches with bookmarks and 410 Gone, finalizers,
/// garbage collection, CRDs with schema validation, discovery and Table output.
/// </summary>
public sealed class TestApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TestApiServerState _state;
    private readonly ApiHandler _handler;
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private int _requestCount;

    private TestApiServer(WebApplication app, TestApiServerState state, ApiHandler handler)
    {
        _app = app;
        _state = state;
        _handler = handler;
    }

    /// <summary>http://127.0.0.1:{port}/</summary>
    public Uri BaseUri { get; private set; } = null!;

    /// <summary>Starts a server on 127.0.0.1 (port 0 = any free port).</summary>
    public static async Task<TestApiServer> StartAsync(TestApiServerOptions? options = null, CancellationToken ct = default)
    {
        options ??= new TestApiServerOptions();
        options.Validate();
        var state = new TestApiServerState(options);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, options.Port);
            k.Limits.MaxRequestBodySize = 16 * 1024 * 1024;
        });
        builder.Logging.ClearProviders();
        builder.Services.AddRoutingCore();
        var app = builder.Build();
        TestApiServer? server = null;
        var handler = new ApiHandler(state, r => server!.Record(r));
        server = new TestApiServer(app, state, handler);
        app.Run(handler.HandleAsync);
        foreach (var ns in options.InitialNamespaces)
        {
            handler.Operations.Create(state.Registry.Find("", "v1", "namespaces")!, null,
                new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns } });
        }
        await app.StartAsync(ct);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUri = new Uri(address.EndsWith('/') ? address : address + "/");
        return server;
    }

    /// <summary>A KubernetesClient over real HTTP to this server; <paramref name="userAgent"/> identifies the caller in <see cref="Requests"/>.</summary>
    public Kubernetes CreateClient(string userAgent = "test") => new(CreateClientConfiguration(userAgent));

    /// <summary>Client configuration for this server (plain HTTP, no credentials).</summary>
    public KubernetesClientConfiguration CreateClientConfiguration(string userAgent = "test") => new()
    {
        Host = BaseUri.ToString().TrimEnd('/'),
        UserAgent = userAgent,
        Namespace = "default",
    };

    /// <summary>A snapshot of the requests answered so far, oldest first.</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

    public void ClearRequests()
    {
        _requests.Clear();
        Interlocked.Exchange(ref _requestCount, 0);
    }

    private void Record(RecordedRequest r)
    {
        _requests.Enqueue(r);
        if (Interlocked.Increment(ref _requestCount) > _state.Options.MaxRecordedRequests && _requests.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _requestCount);
        }
    }

    /// <summary>Applies every CustomResourceDefinition in the *.yaml / *.yml files of <paramref name="dir"/> (create or replace).</summary>
    public async Task ApplyCrdsFromDirectoryAsync(string dir, CancellationToken ct = default)
    {
        var files = Directory.GetFiles(dir, "*.yaml").Concat(Directory.GetFiles(dir, "*.yml")).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
        {
            throw new FileNotFoundException($"no *.yaml files in {dir}");
        }
        var crdType = _state.Registry.Find("apiextensions.k8s.io", "v1", "customresourcedefinitions")!;
        foreach (var file in files)
        {
            var text = await File.ReadAllTextAsync(file, ct);
            foreach (var doc in YamlJson.ParseAll(text).OfType<JsonObject>())
            {
                if (doc["kind"]?.GetValue<string>() != "CustomResourceDefinition")
                {
                    continue;
                }
                ApplyCrd(crdType, doc);
            }
        }
    }

    /// <summary>Creates or replaces one CRD given as JSON.</summary>
    internal void ApplyCrd(ResourceType crdType, JsonObject doc)
    {
        CrdRegistration.Validate(crdType, doc);
        var name = doc["metadata"]!["name"]!.GetValue<string>();
        StoredObject stored;
        if (crdType.Store.Get("", name) is null)
        {
            stored = _handler.Operations.Create(crdType, null, doc);
        }
        else
        {
            stored = _handler.Operations.Update(crdType, "", name, false, cur =>
            {
                doc["metadata"]!.AsObject()["resourceVersion"] = cur["metadata"]!["resourceVersion"]!.DeepClone();
                return doc;
            }, out _);
        }
        var crd = stored.Parse();
        CrdRegistration.Apply(_state, crd);
        var status = CrdRegistration.EstablishedStatus(crd, _state.Now());
        _handler.Operations.Update(crdType, "", name, true, c =>
        {
            c["status"] = status;
            return c;
        }, out _);
    }

    /// <summary>Forgets all watch history: a watch from any resourceVersion before now gets 410 Gone.</summary>
    public void Compact()
    {
        foreach (var s in _state.Registry.Stores)
        {
            s.Compact();
        }
    }

    /// <summary>Cuts every open watch connection (a simulated network drop; clients must re-watch).</summary>
    public void DropWatches()
    {
        foreach (var s in _state.Registry.Stores)
        {
            s.DropWatches();
        }
    }

    /// <summary>
    /// Writes a kubeconfig for this server to <paramref name="path"/> and returns the path. Its user carries a
    /// placeholder token: KubernetesClient refuses a user without credentials, and this server ignores tokens.
    /// </summary>
    public string WriteKubeconfig(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }
        var server = BaseUri.ToString().TrimEnd('/');
        File.WriteAllText(path, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: kserve-node-test
              cluster:
                server: {server}
            contexts:
            - name: kserve-node-test
              context:
                cluster: kserve-node-test
                user: kserve-node-test
                namespace: default
            current-context: kserve-node-test
            users:
            - name: kserve-node-test
              user:
                token: kserve-node-test

            """);
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _state.Registry.Stores)
        {
            s.Close();
        }
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
