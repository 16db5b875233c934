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

    [Theory]
    [InlineData("{{ {'a': 1, 'b': [1.5, none, true, false]} | string }}", "{'a': 1, 'b': [1.5, None, True, False]}")]
    [InlineData("{{ ['x', none, true] | string }}", "['x', None, True]")]
    [InlineData("{{ ('a', 2) | string }}|{{ [(1, none)] | string }}", "('a', 2)|[(1, None)]")]
    [InlineData("{{ \"it's\" | string }}|{{ [\"it's\", 'say \"hi\"', \"both ' \\\"\"] | string }}", "it's|[\"it's\", 'say \"hi\"', 'both \\' \"']")]
    [InlineData("{{ ['a\\\\b', '\\t\\n\\r', 'ünï 😀', '\u00a0\u200b\u0007'] | string }}", "['a\\\\b', '\\t\\n\\r', 'ünï 😀', '\\xa0\\u200b\\x07']")]
    [InlineData("{{ [1.0, 0.0001, 0.00001, 10000000000000000.0, 1000000000000000.0, -2.5, 3] | string }}", "[1.0, 0.0001, 1e-05, 1e+16, 1000000000000000.0, -2.5, 3]")]
    [InlineData("{{ none | string }}|{{ undefined_name | string }}|{{ true | string }}|{{ 2 | string }}", "None||True|2")]
    [InlineData("{{ namespace(a=1) | string }}", "<Namespace {'a': 1}>")]
    public void The_string_filter_gives_python_s_str(string source, string expected) =>
        Assert.Equal(expected, Render(source));

    [Fact]
    public void The_string_filter_on_a_json_object_gives_python_s_dict_repr() =>
        Assert.Equal("{'name': 'f', 'required': ['city'], 'strict': False, 'n': None}",
            Render("{{ tool | string }}", """{"tool": {"name": "f", "required": ["city"], "strict": false, "n": null}}"""));

    [Theory]
    [InlineData("{{ '<x{}>'.format(':y') }}", "<x:y>")]
    [InlineData("{{ '{} {} {}'.format(1, none, true) }}", "1 None True")]
    [InlineData("{{ '{1}{0}{0!r}'.format('a', 'b') }}", "ba'a'")]
    [InlineData("{{ '{name}={value!r}'.format(name='k', value=[1, 'v']) }}", "k=[1, 'v']")]
    [InlineData("{{ '{{literal}} {}'.format(2.0) }}", "{literal} 2.0")]
    public void Str_format_fills_fields_as_python_does(string source, string expected) =>
        Assert.Equal(expected, Render(source));

    [Theory]
    [InlineData("{{ '{} {0}'.format(1) }}")]
    [InlineData("{{ '{} {}'.format(1) }}")]
    [InlineData("{{ '{missing}'.format(1) }}")]
    [InlineData("{{ '{:>4}'.format(1) }}")]
    public void Str_format_refuses_what_python_refuses_or_we_do_not_support(string source) =>
        Assert.Throws<JinjaException>(() => Render(source));

    [Theory]
    [InlineData("{% set d = {0: 'a', 512: 'b', 2: 'c'} %}{% for k, v in d | dictsort %}{{ k }}={{ v }};{% endfor %}{{ d[512] }}{{ d.get(2) }}{% if 512 in d and '512' not in d %} in{% endif %}",
        "0=a;2=c;512=b;bc in")]
    [InlineData("{% for k in {1: 'a', 2.5: 'b'} %}{{ k + 1 }};{% endfor %}", "2;3.5;")]
    [InlineData("{{ {1: 'a', true: 'b', 1.0: 'c', none: 'd'} | string }}", "{1: 'c', None: 'd'}")]
    [InlineData("{{ {1: 'x', '1': 'y', 2.5: true, none: 0} | tojson }}", """{"1": "x", "1": "y", "2.5": true, "null": 0}""")]
    [InlineData("{{ {2: 'a', 1: 'b'} | tojson(sort_keys=true) }}", """{"1": "b", "2": "a"}""")]
    [InlineData("{{ {(1, 'a'): 'x'}[(1, 'a')] }}", "x")]
    public void Dict_literals_take_numbers_none_and_tuples_as_keys_as_python_does(string source, string expected) =>
        Assert.Equal(expected, Render(source));

    [Fact]
    public void A_list_as_a_dict_key_is_refused_as_unhashable() =>
        Assert.Throws<JinjaException>(() => Render("{{ {[1]: 2} }}"));
}
