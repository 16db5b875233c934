using System.Net;
using KServe.Node.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace KServe.Node.Hosting.Tests;

public sealed class ServiceDefaultsTests
{
    private sealed class Toggle : IHealthCheck
    {
        public volatile bool Ready;

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(Ready ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("model not loaded"));
    }

    private sealed class FakeFamilies : IMetricsExposition
    {
        public void Write(PrometheusText writer) =>
            writer.Family("vllm:num_requests_running", "gauge", "Running requests.")
                .Sample("vllm:num_requests_running", [new("model_name", "tiny \"q\"")], 3);
    }

    private static async Task<(WebApplication App, HttpClient Client)> StartAsync(Toggle toggle)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.AddServiceDefaults("test-daemon");
        builder.Services.AddHealthChecks().AddCheck("model", toggle, tags: [ServiceDefaults.ReadyTag]);
        builder.Services.AddSingleton<IMetricsExposition, FakeFamilies>();
        var app = builder.Build();
        app.MapServiceDefaults();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return (app, new HttpClient { BaseAddress = new Uri(address) });
    }

    [Fact]
    public async Task Readyz_follows_ready_checks_while_healthz_stays_live()
    {
        var toggle = new Toggle();
        var (app, client) = await StartAsync(toggle);
        await using (app)
        using (client)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.GetAsync("/readyz")).StatusCode);
            toggle.Ready = true;
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);
        }
    }

    [Fact]
    public async Task Metrics_exposes_prometheus_net_families_and_appended_families()
    {
        var counter = Prometheus.Metrics.CreateCounter("kserve_node_test_events_total", "Test events.");
        counter.Inc(2);
        var (app, client) = await StartAsync(new Toggle());
        await using (app)
        using (client)
        {
            var response = await client.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("text/plain", response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Contains("kserve_node_test_events_total 2", body, StringComparison.Ordinal);
            Assert.Contains("# TYPE vllm:num_requests_running gauge\n", body, StringComparison.Ordinal);
            Assert.Contains("vllm:num_requests_running{model_name=\"tiny \\\"q\\\"\"} 3\n", body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Histogram_series_are_cumulative_with_inf_sum_and_count()
    {
        var text = new PrometheusText()
            .Family("vllm:time_to_first_token_seconds", "histogram", "TTFT.")
            .Histogram("vllm:time_to_first_token_seconds", [new("model_name", "m")], [0.1, 0.5], [2, 3, 1], 1.25)
            .ToString();
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
        [
            "# HELP vllm:time_to_first_token_seconds TTFT.",
            "# TYPE vllm:time_to_first_token_seconds histogram",
            "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.1\"} 2",
            "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.5\"} 5",
            "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 6",
            "vllm:time_to_first_token_seconds_sum{model_name=\"m\"} 1.25",
            "vllm:time_to_first_token_seconds_count{model_name=\"m\"} 6",
        ], lines);
    }

    [Fact]
    public void Histogram_rejects_mismatched_bucket_counts()
    {
        var ex = Assert.Throws<ArgumentException>(() => new PrometheusText().Histogram("h", [], [1.0], [1], 0));
        Assert.Contains("+Inf", ex.Message, StringComparison.Ordinal);
    }
}
