using System.Text.Json.Nodes;
using KServe.Node.Api.Serialization;

namespace KServe.Node.Api.Tests;

public sealed class YamlJsonTests
{
    [Theory]
    [InlineData("v: yes", "true")]
    [InlineData("v: On", "true")]
    [InlineData("v: n", "false")]
    [InlineData("v: FALSE", "false")]
    [InlineData("v: ~", "null")]
    [InlineData("v:", "null")]
    [InlineData("v: Null", "null")]
    [InlineData("v: 42", "42")]
    [InlineData("v: -7", "-7")]
    [InlineData("v: +7", "7")]
    [InlineData("v: 0x1F", "31")]
    [InlineData("v: 017", "15")]
    [InlineData("v: 0o17", "15")]
    [InlineData("v: 0b101", "5")]
    [InlineData("v: 1_000", "1000")]
    [InlineData("v: 1.50", "1.50")]
    [InlineData("v: 1e3", "1e3")]
    [InlineData("v: .5", "0.5")]
    [InlineData("v: 08", "8")]
    [InlineData("v: 18446744073709551615", "18446744073709551615")]
    [InlineData("v: '42'", "\"42\"")]
    [InlineData("v: \"yes\"", "\"yes\"")]
    [InlineData("v: !!str 42", "\"42\"")]
    [InlineData("v: !!int \"42\"", "42")]
    [InlineData("v: 16Gi", "\"16Gi\"")]
    [InlineData("v: 1.2.3", "\"1.2.3\"")]
    [InlineData("v: hf://owner/repo:main", "\"hf://owner/repo:main\"")]
    [InlineData("v: |\n  line1\n  line2\n", "\"line1\\nline2\\n\"")]
    public void Scalars_resolve_like_kubernetes_yaml(string yaml, string json)
    {
        var node = YamlJson.Parse(yaml)!;

        JsonAssert.Equal(JsonNode.Parse(json), node["v"]);
    }

    [Fact]
    public void Anchors_aliases_and_merge_keys_are_expanded()
    {
        var node = YamlJson.Parse("base: &b\n  a: 1\n  b: 2\ncopy: *b\nmerged:\n  <<: *b\n  b: 3\n")!;

        JsonAssert.Equal(JsonNode.Parse("""{"a":1,"b":2}"""), node["copy"]);
        JsonAssert.Equal(JsonNode.Parse("""{"a":1,"b":3}"""), node["merged"]);
    }

    [Fact]
    public void Alias_bombs_are_refused()
    {
        var yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
        for (var i = 1; i < 8; i++)
        {
            var prev = (char)('a' + i - 1);
            var cur = (char)('a' + i);
            yaml += $"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n";
        }

        var e = Assert.Throws<ApiSerializationException>(() => YamlJson.Parse(yaml));
        Assert.Contains("more than 1000000 nodes", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("v: .inf")]
    [InlineData("v: .NaN")]
    public void Values_json_cannot_hold_are_refused(string yaml)
    {
        var e = Assert.Throws<ApiSerializationException>(() => YamlJson.Parse(yaml));
        Assert.Equal("v", e.Path);
    }

    [Fact]
    public void Strings_that_look_like_other_types_are_quoted_when_written_and_read_back_unchanged()
    {
        string[] tricky =
        [
            "yes", "No", "on", "y", "true", "null", "~", "", " lead", "trail ", "42", "0x10", "017", "1e3", "1.5", ".5",
            "-", "- item", "a: b", "#hash", "a #b", "[x]", "{x}", "*alias", "&anchor", "!tag", "%dir", "@at", "`tick",
            "line1\nline2", "tab\there", "quote\"s", "apostrophe's", "ünïcödé 模型", "16Gi", "500m", "hf://o/r:rev",
            ".inf", "!!str", "? key", "|", ">",
        ];
        var obj = new JsonObject();
        for (var i = 0; i < tricky.Length; i++)
        {
            obj[$"k{i}"] = tricky[i];
        }

        obj["nested"] = new JsonObject { ["list"] = new JsonArray("yes", 1, true, null, new JsonObject(), new JsonArray()) };
        obj["empty"] = new JsonObject();

        var yaml = YamlJson.Write(obj);

        JsonAssert.Equal(obj, YamlJson.Parse(yaml));
    }

    [Fact]
    public void Keys_that_need_quoting_survive()
    {
        var obj = new JsonObject { ["yes"] = 1, ["a: b"] = 2, [""] = 3, ["internal.serving.kserve.io/localmodel"] = "x" };

        var back = YamlJson.Parse(YamlJson.Write(obj))!.AsObject();

        Assert.Equal(["yes", "a: b", "", "internal.serving.kserve.io/localmodel"], back.Select(kv => kv.Key));
    }

    [Fact]
    public void Multi_document_streams_are_split()
    {
        var docs = YamlJson.ParseAll("a: 1\n---\nb: 2\n---\n");
        Assert.Equal(3, docs.Count);
        Assert.Null(docs[2]);
        var text = YamlJson.WriteAll([docs[0], docs[1]]);
        Assert.Equal(2, YamlJson.ParseAll(text).Count);
    }

    [Fact]
    public void Json_input_is_accepted_where_yaml_is()
    {
        var cache = ApiSerializer.Deserialize<V1Alpha1.LocalModelCache>(
            """{"apiVersion":"serving.kserve.io/v1alpha1","kind":"LocalModelCache","metadata":{"name":"m"},"spec":{"sourceModelUri":"s3://b/m","modelSize":"1Gi","nodeGroups":["g"]}}""");

        Assert.Equal("s3://b/m", cache.Spec.SourceModelUri);
        var e = Assert.Throws<ApiSerializationException>(() => ApiSerializer.Deserialize<V1Alpha1.LocalModelCache>("{\"spec\": "));
        Assert.StartsWith("invalid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Integer_quantities_read_from_yaml_are_exact()
    {
        var cache = ApiSerializer.Deserialize<V1Alpha1.LocalModelCache>("spec:\n  modelSize: 17179869184\n");

        Assert.Equal(17179869184L, cache.Spec.ModelSize!.ToInt64());
        // A plain number has decimal-SI format, so it is written back as the same digits (Go does the same).
        Assert.Equal("17179869184", ApiSerializer.ToNode(cache)["spec"]!["modelSize"]!.GetValue<string>());
    }

    [Fact]
    public void Negative_quantities_are_written_correctly()
    {
        var status = new V1Alpha1.LocalModelNodeGroupStatus { Available = new("-2Gi"), Used = new("-1") };

        Assert.Equal("""{"used":"-1","available":"-2Gi"}""", ApiSerializer.SerializeJson(status));
    }
}
