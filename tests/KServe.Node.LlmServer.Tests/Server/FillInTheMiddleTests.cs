using System.Text.Json;

namespace KServe.Node.LlmServer.Tests.Server;

/// <summary>
/// Legacy completions' <c>suffix</c> on a model whose vocabulary has fill-in-the-middle tokens: the prompt becomes
/// llama-server's <c>[BOS] FIM_PRE prompt FIM_SUF suffix FIM_MID</c>, and the answer is the middle.
/// </summary>
public sealed class FillInTheMiddleTests(ThinkingServerFixture fixture) : IClassFixture<ThinkingServerFixture>
{
    private RunningServer S => fixture.Server;

    private async Task<int[]> TokensAsync(string text)
    {
        using var r = await S.Http.PostAsync("tokenize", Raw.Json(JsonSerializer.Serialize(new { content = text, add_special = false })));
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        return [.. doc.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32())];
    }

    [Fact]
    public async Task A_suffix_answers_the_middle_of_the_fill_in_the_middle_prompt()
    {
        const string prefix = "def add(a, b):\n    ";
        const string suffix = "\n    return total\n";
        const string greedy = ",\"temperature\":0,\"max_tokens\":2";
        var (status, fim, _) = await Raw.PostAsync(S.Http, "v1/completions",
            $"{{\"model\":\"tiny\",\"prompt\":{JsonSerializer.Serialize(prefix)},\"suffix\":{JsonSerializer.Serialize(suffix)}{greedy}}}");
        Assert.True(status == 200, fim?.RootElement.GetRawText());

        // The same answer from the FIM prompt written out as token ids (the tiny vocabulary adds BOS, id 1).
        int[] expected = [1, TestModels.FimPrefixId, .. await TokensAsync(prefix), TestModels.FimSuffixId, .. await TokensAsync(suffix), TestModels.FimMiddleId];
        var (status2, byIds, _) = await Raw.PostAsync(S.Http, "v1/completions", $"{{\"model\":\"tiny\",\"prompt\":{JsonSerializer.Serialize(expected)}{greedy}}}");
        Assert.Equal(200, status2);
        Assert.Equal(expected.Length, fim!.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(byIds!.RootElement.GetProperty("choices")[0].GetProperty("text").GetString(), fim.RootElement.GetProperty("choices")[0].GetProperty("text").GetString());

        // A suffix with echo has no meaning (the prompt is not the text before the answer): refused, naming it.
        var (bad, body, _) = await Raw.PostAsync(S.Http, "v1/completions", $"{{\"model\":\"tiny\",\"prompt\":\"x\",\"suffix\":\"y\",\"echo\":true}}");
        Assert.Equal(400, bad);
        Raw.AssertError(body, "suffix");
    }
}
