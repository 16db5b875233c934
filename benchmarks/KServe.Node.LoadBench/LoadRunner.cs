using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KServe.Node.LoadBench;

/// <summary>One streamed request's timings, measured at the client.</summary>
internal sealed record RequestSample(double TtftSeconds, IReadOnlyList<double> InterTokenSeconds, int OutputTokens, double E2eSeconds);

/// <summary>A workload: how prompts are made and how many run at once.</summary>
internal sealed record Workload(string Name, int Concurrency, Func<int, string> Prompt);

/// <summary>Aggregate of one round against one server.</summary>
internal sealed record RoundResult(int Requests, int OutputTokens, double WallSeconds, double[] Ttft, double[] Itl, int TokenMismatches)
{
    public int Retries { get; init; }

    public double OutputTokensPerSecond => OutputTokens / WallSeconds;
    public double RequestsPerSecond => Requests / WallSeconds;
}

/// <summary>
/// Closed-loop streaming chat load: C workers each send a request, read its SSE stream to the end, and
/// send the next, until the round's request count is used up. Output length is fixed by max_tokens with
/// EOS ignored on the server (ignore_eos), and every response's token count is checked.
/// </summary>
internal sealed class LoadRunner(HttpClient http, string model, int maxTokens)
{
    /// <summary>
    /// Runs <paramref name="requests"/> requests, prompts <paramref name="firstPrompt"/> onward: each round (and the
    /// warm-up) gets prompts of its own, so no server answers a measured request from a prompt it cached earlier.
    /// </summary>
    public async Task<RoundResult> RunRoundAsync(Uri baseUri, Workload workload, int requests, int firstPrompt, CancellationToken ct)
    {
        var samples = new List<RequestSample>(requests);
        var next = -1;
        var mismatches = 0;
        var retries = 0;
        var sw = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, workload.Concurrency).Select(async _ =>
        {
            while (true)
            {
                var i = Interlocked.Increment(ref next);
                if (i >= requests)
                {
                    return;
                }
                RequestSample s;
                try
                {
                    s = await OneAsync(baseUri, workload.Prompt(firstPrompt + i), ct).ConfigureAwait(false);
                }
                catch (HttpRequestException e)
                {
                    // One retry on a transport failure (a connection the server had closed); it is counted.
                    Interlocked.Increment(ref retries);
                    Console.Error.WriteLine($"loadbench: {baseUri} request {i} failed ({e.Message}); retrying once");
                    s = await OneAsync(baseUri, workload.Prompt(firstPrompt + i), ct).ConfigureAwait(false);
                }
                lock (samples)
                {
                    samples.Add(s);
                    if (s.OutputTokens != maxTokens)
                    {
                        mismatches++;
                    }
                }
            }
        }).ToArray();
        await Task.WhenAll(workers).ConfigureAwait(false);
        sw.Stop();
        return new RoundResult(samples.Count, samples.Sum(s => s.OutputTokens), sw.Elapsed.TotalSeconds,
            [.. samples.Select(s => s.TtftSeconds)], [.. samples.SelectMany(s => s.InterTokenSeconds)], mismatches) { Retries = retries };
    }

    private async Task<RequestSample> OneAsync(Uri baseUri, string prompt, CancellationToken ct)
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt }),
            ["max_tokens"] = maxTokens,
            ["temperature"] = 0,
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
            ["ignore_eos"] = true,
        };
        using var req = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUri, "v1/chat/completions"))
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        // llama-server ends the connection after a streamed response without saying so, and a reused
        // connection then fails; one connection per request, for both servers alike (loopback connects are cheap).
        req.Headers.ConnectionClose = true;
        var start = Stopwatch.GetTimestamp();
        using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        resp.EnsureSuccessStatusCode();
        await using var stream = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        double? ttft = null;
        long last = 0;
        var itl = new List<double>(maxTokens);
        var chunks = 0;
        int? usageTokens = null;
        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
            {
                continue;
            }
            var data = line.AsSpan(6);
            if (data.SequenceEqual("[DONE]"))
            {
                break;
            }
            var now = Stopwatch.GetTimestamp();
            using var doc = JsonDocument.Parse(data.ToString());
            var root = doc.RootElement;
            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object
                && usage.TryGetProperty("completion_tokens", out var ctok))
            {
                usageTokens = ctok.GetInt32();
            }
            if (!root.TryGetProperty("choices", out var choices) || choices.GetArrayLength() == 0)
            {
                continue;
            }
            var delta = choices[0].GetProperty("delta");
            if (!delta.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String
                || content.GetString()!.Length == 0)
            {
                continue;
            }
            chunks++;
            if (ttft is null)
            {
                ttft = Stopwatch.GetElapsedTime(start, now).TotalSeconds;
            }
            else
            {
                itl.Add(Stopwatch.GetElapsedTime(last, now).TotalSeconds);
            }
            last = now;
        }
        var e2e = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new RequestSample(ttft ?? e2e, itl, usageTokens ?? chunks, e2e);
    }
}
