using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Net.Sockets;
using KServe.Node.Hosting.Cli;

namespace KServe.Node.Hosting.Tests;

/// <summary>The shared command-line idiom: names, values, environment, verbs and help.</summary>
public sealed class CliTests
{
    public sealed class SampleOptions
    {
        [Description("grace period")]
        public TimeSpan GcGrace { get; set; } = TimeSpan.FromMinutes(10);

        [Description("chunk")]
        [Range(1L << 20, 1L << 32)]
        public long ChunkSizeBytes { get; set; } = 32L << 20;

        [Description("switch")]
        public bool LeaderElect { get; set; }

        [Description("embeddings")]
        public bool EnableEmbeddings { get; set; } = true;

        [Description("keys")]
        public List<string> ApiKeys { get; set; } = [];

        [Description("mode")]
        public DayOfWeek Day { get; set; } = DayOfWeek.Monday;

        [Description("port")]
        [Range(0, 65535)]
        public int HttpPort { get; set; } = 8090;

        [Description("root")]
        public string Root { get; set; } = "/mnt/models";

        /// <summary>Read-only: not a setting, so no flag.</summary>
        public string Computed => Root + "/x";
    }

    private static readonly Dictionary<string, string> NoEnv = [];

    private static CliApp App() => new CliApp("demo", "DEMO")
        .Add(new CliCommand(null, "the daemon").Options<SampleOptions>("S", f => f.Alias(nameof(SampleOptions.ChunkSizeBytes), "--chunk-size", "-k").Negation(nameof(SampleOptions.EnableEmbeddings), "--no-embeddings")))
        .Add(new CliCommand("fetch", "one-shot", "URI DEST").Options<SampleOptions>("S", f => f.Required(nameof(SampleOptions.Root)).Without(nameof(SampleOptions.Day))).Flag("json", "as JSON", isSwitch: true));

    [Theory]
    [InlineData("GcGrace", "gc-grace")]
    [InlineData("HttpPort", "http-port")]
    [InlineData("ChunkSizeBytes", "chunk-size-bytes")]
    [InlineData("MetricsURL", "metrics-url")]
    [InlineData("Q8_0", "q8_0")]
    public void Property_names_become_kebab_flags(string property, string flag) => Assert.Equal(flag, CliNames.Kebab(property));

    [Fact]
    public void Flags_map_to_configuration_keys_with_values_in_the_binder_s_form()
    {
        var r = App().Parse(["--gc-grace", "1h30m", "--chunk-size=64Mi", "--leader-elect", "--no-embeddings", "--api-keys", "a", "--api-keys", "b", "--day", "friday", "--S:Root=/x"], NoEnv);
        Assert.Equal("01:30:00", r.Configuration["S:GcGrace"]);
        Assert.Equal("67108864", r.Configuration["S:ChunkSizeBytes"]);
        Assert.Equal("true", r.Configuration["S:LeaderElect"]);
        Assert.Equal("false", r.Configuration["S:EnableEmbeddings"]);
        Assert.Equal("a", r.Configuration["S:ApiKeys:0"]);
        Assert.Equal("b", r.Configuration["S:ApiKeys:1"]);
        Assert.Equal("Friday", r.Configuration["S:Day"]);
        Assert.Equal("/x", r.Configuration["S:Root"]);
        Assert.False(r.Configuration.ContainsKey("S:Computed"));
    }

    [Theory]
    [InlineData("90s", 90_000)]
    [InlineData("10m", 600_000)]
    [InlineData("1h2m3.5s", 3_723_500)]
    [InlineData("250ms", 250)]
    [InlineData("0", 0)]
    [InlineData("00:00:05", 5000)]
    public void Durations_take_Go_forms(string text, double ms) => Assert.Equal(TimeSpan.FromMilliseconds(ms), TimeSpan.Parse(App().Parse(["--gc-grace", text], NoEnv).Configuration["S:GcGrace"]!, System.Globalization.CultureInfo.InvariantCulture));

    [Theory]
    [InlineData(new[] { "--gc-grace", "soon" }, "--gc-grace must be a duration such as 90s, 10m or 1h30m, got 'soon'")]
    [InlineData(new[] { "-k", "1Ki" }, "-k must be from 1048576 to 4294967296, got '1Ki'")]
    [InlineData(new[] { "--http-port", "-1" }, "--http-port must be from 0 to 65535, got '-1'")]
    [InlineData(new[] { "--leader-elect=maybe" }, "--leader-elect must be true or false, got 'maybe'")]
    [InlineData(new[] { "--day", "someday" }, "--day must be one of sunday, monday, tuesday, wednesday, thursday, friday, saturday, got 'someday'")]
    [InlineData(new[] { "--nope" }, "unknown flag --nope for 'demo' (see 'demo --help')")]
    [InlineData(new[] { "--root" }, "--root needs a value (VALUE: root)")]
    [InlineData(new[] { "extra" }, "unexpected argument 'extra' for 'demo' (see 'demo --help')")]
    [InlineData(new[] { "fetch", "u", "d" }, "missing --root VALUE: root (see 'demo fetch --help')")]
    [InlineData(new[] { "fetch", "u", "--root", "r" }, "'demo fetch' needs URI DEST; missing DEST (see --help)")]
    [InlineData(new[] { "fetch", "u", "d", "--root", "r", "--day", "monday" }, "unknown flag --day for 'demo fetch' (see 'demo fetch --help')")]
    public void Bad_input_names_the_flag_and_the_expected_form(string[] args, string message) =>
        Assert.Equal(message, Assert.Throws<CliException>(() => App().Parse(args, NoEnv)).Message);

    [Fact]
    public void The_environment_fills_in_and_the_command_line_wins()
    {
        var env = new Dictionary<string, string> { ["DEMO_HTTP_PORT"] = "9000", ["DEMO_ROOT"] = "/env", ["DEMO_API_KEYS"] = "x, y", ["DEMO_LEADER_ELECT"] = "1" };
        var r = App().Parse(["--root", "/flag"], env);
        Assert.Equal("9000", r.Configuration["S:HttpPort"]);
        Assert.Equal("/flag", r.Configuration["S:Root"]);
        Assert.Equal("y", r.Configuration["S:ApiKeys:1"]);
        Assert.Equal("true", r.Configuration["S:LeaderElect"]);
        Assert.Equal("DEMO_HTTP_PORT must be an integer, got 'x'",
            Assert.Throws<CliException>(() => App().Parse([], new Dictionary<string, string> { ["DEMO_HTTP_PORT"] = "x" })).Message);
    }

    [Fact]
    public void Verbs_take_positional_arguments_and_their_own_flags()
    {
        var r = App().Parse(["fetch", "s3://b/k", "/out", "--root", "/r", "--json"], NoEnv);
        Assert.Equal("fetch", r.Verb);
        Assert.Equal(["s3://b/k", "/out"], r.Positional);
        Assert.True(r.Switch("json"));
        Assert.Equal("/r", r.Configuration["S:Root"]);
    }

    [Fact]
    public void Help_is_answered_before_anything_is_checked_and_lists_every_flag_with_default_and_environment()
    {
        foreach (var args in new[] { ["--help"], ["help"], new[] { "-h", "--gc-grace", "bad" }, ["fetch", "--help"], ["help", "fetch"] })
        {
            Assert.True(App().Parse(args, NoEnv).HelpRequested, string.Join(' ', args));
        }
        var usage = App().Parse(["--help"], NoEnv).Usage;
        Assert.Contains("--gc-grace DURATION", usage, StringComparison.Ordinal);
        Assert.Contains("(default 10m)", usage, StringComparison.Ordinal);
        Assert.Contains("-k, --chunk-size-bytes, --chunk-size SIZE", usage, StringComparison.Ordinal);
        Assert.Contains("(default 32Mi)", usage, StringComparison.Ordinal);
        Assert.Contains("env DEMO_GC_GRACE, key S:GcGrace", usage, StringComparison.Ordinal);
        Assert.Contains("--day sunday|monday|", usage, StringComparison.Ordinal);
        Assert.Contains("fetch", usage, StringComparison.Ordinal);
        var fetch = App().Parse(["fetch", "--help"], NoEnv).Usage;
        Assert.StartsWith("usage: demo fetch URI DEST --root VALUE [flags]", fetch, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_flag_needs_help_text()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new CliCommand(null, "x").Options<NoHelp>("N"));
        Assert.Contains("--value has no help text", e.Message, StringComparison.Ordinal);
    }

    public sealed class NoHelp
    {
        public int Value { get; set; }
    }

    [Theory]
    [InlineData(":8081", "0.0.0.0:8081")]
    [InlineData("127.0.0.1:0", "127.0.0.1:0")]
    [InlineData("[::1]:9", "[::1]:9")]
    [InlineData("localhost:80", "127.0.0.1:80")]
    public void Listen_addresses_take_KServe_s_form(string text, string endpoint) => Assert.Equal(endpoint, Daemon.ParseEndpoint("--metrics-addr", text).ToString());

    [Fact]
    public void A_taken_port_is_named_with_its_flag()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var e = Assert.Throws<StartupException>(() => Daemon.EnsurePortFree("--port", "127.0.0.1", port));
        Assert.Equal($"port {port} on 127.0.0.1 is already in use (--port): stop the process that holds it or choose another --port", e.Message);
        Daemon.EnsurePortFree("--port", "127.0.0.1", 0);
    }

    [Fact]
    public async Task The_runner_turns_operator_errors_into_one_line_and_exit_2()
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Assert.Equal(2, await Daemon.RunAsync(App(), ["--nope"], (_, _) => Task.FromResult(0), stdout, stderr));
        Assert.Equal("demo: unknown flag --nope for 'demo' (see 'demo --help')\n", stderr.ToString());
        stderr.GetStringBuilder().Clear();
        Assert.Equal(2, await Daemon.RunAsync(App(), [], (_, _) => throw new StartupException("no cluster"), stdout, stderr));
        Assert.Equal("demo: no cluster\n", stderr.ToString());
        stderr.GetStringBuilder().Clear();
        Assert.Equal(1, await Daemon.RunAsync(App(), [], (_, _) => throw new InvalidCastException("boom\nsecond line"), stdout, stderr));
        Assert.Equal("demo: unexpected error: InvalidCastException: boom second line\n", stderr.ToString());
        Assert.Equal(0, await Daemon.RunAsync(App(), ["--help"], (_, _) => throw new InvalidOperationException("must not run"), stdout, stderr));
        Assert.StartsWith("usage: demo [flags]", stdout.ToString(), StringComparison.Ordinal);
    }
}
