using System.Text.Json;
using KServe.Node.LlmServer.Templates;

namespace KServe.Node.LlmServer.Tests.Templates;

/// <summary>Constructs where our renderer follows Python's jinja2 (what transformers runs), each rendered in isolation.</summary>
public sealed class JinjaTemplateTests
{
    private static string Render(string source, string variables = "{}")
    {
        using var context = JsonDocument.Parse(variables);
        return JinjaTemplate.Parse(source).Render(context.RootElement);
    }

    [Theory]
    [InlineData("{{ none | selectattr('type', 'equalto', 'x') | list | length }}")]
    [InlineData("{{ tools | rejectattr('type') | list | length }}")]
    [InlineData("{{ none | map(attribute='name') | list | length }}")]
    public void Selectattr_rejectattr_and_map_over_none_or_undefined_give_an_empty_list(string source) =>
        Assert.Equal("0", Render(source));

    [Theory]
    [InlineData("{% for a, b in [('x', 1), ('y', 2)] %}{{ a }}={{ b }};{% endfor %}", "x=1;y=2;")]
    [InlineData("{% for a, b in [['x', 1], ['y', 2]] %}{{ a }}={{ b }};{% endfor %}", "x=1;y=2;")]
    [InlineData("{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "x=1;y=2;")]
    public void A_for_loop_unpacks_tuples_lists_and_items(string source, string expected) =>
        Assert.Equal(expected, Render(source));
}
