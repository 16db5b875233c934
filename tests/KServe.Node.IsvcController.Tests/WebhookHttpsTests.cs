using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using KServe.Node.Admission;
using KServe.Node.IsvcController.Webhook;
using KServe.Node.TestKit.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using static KServe.Node.IsvcController.Tests.Samples;

namespace KServe.Node.IsvcController.Tests;

/// <summary>The webhook over real HTTPS with the self-signed certificate, as the API server would call it.</summary>
public sealed class WebhookHttpsTests : IAsyncLifetime
{
    private readonly WebhookCertificate _certificate = WebhookCertificate.Create("isvc-webhook", "kserve-node", ["localhost", "127.0.0.1"], TimeProvider.System, TimeSpan.FromHours(1));
    private WebApplication? _app;
    private HttpClient? _http;

    public async ValueTask InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(_certificate.Serving)));
        builder.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(new IsvcControllerOptions()));
        _app = builder.Build();
        _app.MapAdmissionWebhook();
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();

        // Trust exactly the caBundle the controller would publish, as the API server does.
        var handler = CaBundleTrust.Handler(_certificate.CaBundlePem);
        _http = new HttpClient(handler) { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(30) };
    }

    public async ValueTask DisposeAsync()
    {
        _http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        _certificate.Dispose();
    }

    [Fact]
    public async Task The_certificate_names_the_service_and_a_denial_comes_back_over_https()
    {
        var san = _certificate.Serving.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames().ToList();
        Assert.Contains("isvc-webhook.kserve-node.svc", san);
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", System.Text.Encoding.ASCII.GetString(_certificate.CaBundlePem), StringComparison.Ordinal);

        var review = new JsonObject
        {
            ["apiVersion"] = "admission.k8s.io/v1",
            ["kind"] = "AdmissionReview",
            ["request"] = new JsonObject { ["uid"] = "u-9", ["operation"] = "CREATE", ["object"] = Isvc(edit: p => p["minReplicas"] = -1) },
        };
        using var response = await _http!.PostAsJsonAsync(AdmissionReviewer.Path, review);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("u-9", body["response"]!["uid"]!.GetValue<string>());
        Assert.False(body["response"]!["allowed"]!.GetValue<bool>());
        Assert.Equal("'MinReplicas' cannot be less than 0", body["response"]!["status"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_body_that_is_not_an_admission_review_is_a_400_not_a_500()
    {
        using var content = new StringContent("not json", System.Text.Encoding.UTF8, "application/json");
        using var response = await _http!.PostAsync(AdmissionReviewer.Path, content);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("not an AdmissionReview", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
