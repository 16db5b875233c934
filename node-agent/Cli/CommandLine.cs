using KServe.Node.Agent.Engine;
using KServe.Node.Hosting.Cli;

namespace KServe.Node.Agent.Cli;

/// <summary>
/// The agent's command line (the house contract): no verb = Kubernetes mode; <c>standalone</c>;
/// <c>download URI DEST</c>; <c>list</c>. Parsed by the daemons' shared <see cref="CliApp"/>.
/// </summary>
internal static class AgentCli
{
    private const string Cache = """
        The cache root (--root):
          models/{storageKey}/     each model exactly as in the source (pods mount this subPath); storageKey is
                                   KServe's: 16 hex characters of SHA-256 over the source URI
          .state/{storageKey}.json its manifest, the completion marker: caches served, redacted source, filter,
                                   every file with size, checksum and verification level (checksum or size-only)
          .staging/                downloads in progress with their journal: a restart after SIGTERM or SIGKILL
                                   fetches at most the missing part plus one chunk per stream
          .replaced/               folders swapped out (renameat2 RENAME_EXCHANGE), kept for --gc-grace
          .lock                    one agent per root; a second one exits with one line
        Nothing is deleted on an incomplete picture: only after the desired state is known (the LocalModelNode read,
        every config file parsed; a broken file keeps its last good content) and a model has stayed out of it for
        --gc-grace. A folder under models/ without a manifest (KServe's agent, a lost .state) is adopted when it
        matches the source listing (0 bytes fetched), else replaced by one atomic exchange. Only folders named like
        storage keys are ever collected. See node-agent/README.md.
        """;

    public static CliCommand Cluster { get; } = new CliCommand(null,
            "Kubernetes mode: reconciles this node's LocalModelNode (NODE_NAME from the downward API) into the cache root and reports its status.")
    {
        Notes = Cache,
    }
        .Options<AgentOptions>(AgentOptions.Section, Paths)
        .Options<KubernetesOptions>(KubernetesOptions.Section, f => f.ValueName(nameof(KubernetesOptions.Kubeconfig), "FILE").ValueName(nameof(KubernetesOptions.NodeName), "NAME"))
        .Options<DownloadOptions>(DownloadOptions.Section, f => DownloadFlags(f));

    public static CliCommand Standalone { get; } = new CliCommand("standalone",
            "Caches the models of the LocalModelCache YAML files in --config-dir into --root, without Kubernetes.")
    {
        Notes = Cache,
    }
        .Options<AgentOptions>(AgentOptions.Section, f => Paths(f.Required(nameof(AgentOptions.Root))))
        .Options<StandaloneOptions>(StandaloneOptions.Section, f => f
            .Required(nameof(StandaloneOptions.ConfigDir))
            .ValueName(nameof(StandaloneOptions.ConfigDir), "DIR")
            .Alias(nameof(StandaloneOptions.StorageLimitBytes), "--storage-limit"))
        .Options<DownloadOptions>(DownloadOptions.Section, f => DownloadFlags(f));

    public static CliCommand Download { get; } = new CliCommand("download",
            "Downloads URI into DEST once and exits 0, or prints one line and exits non-zero (the init container of an InferenceService without a cache).",
            "URI DEST")
        .Options<DownloadOptions>(DownloadOptions.Section, f => DownloadFlags(f).Without(nameof(DownloadOptions.MaxConcurrentModels), nameof(DownloadOptions.ReserveBytes), nameof(DownloadOptions.GcGrace), nameof(DownloadOptions.AwsDefaultCredentials)))
        .Flag("allow", "comma-separated globs of the files to fetch (default: $STORAGE_ALLOW_PATTERNS, else all)", valueName: "GLOBS")
        .Flag("ignore", "comma-separated globs of the files to skip (default: $STORAGE_IGNORE_PATTERNS)", valueName: "GLOBS")
        .Flag("verbose", "log every request and retry", isSwitch: true);

    public static CliCommand List { get; } = new CliCommand("list", "Lists cached models with size, state and progress, from a running agent (--url) or from disk (--root).")
        .Flag("root", "cache root to read from disk", valueName: "DIR")
        .Flag("url", "base URL of a running agent (its /status)", valueName: "URL")
        .Flag("json", "print the status as JSON", isSwitch: true);

    public static CliApp App { get; } = new CliApp("node-agent", "NODE_AGENT").Add(Cluster).Add(Standalone).Add(Download).Add(List);

    private static void Paths(OptionsFlags f) => f.ValueName(nameof(AgentOptions.Root), "DIR").ValueName(nameof(AgentOptions.Address), "ADDRESS");

    private static OptionsFlags DownloadFlags(OptionsFlags f) => f.Alias(nameof(DownloadOptions.ChunkSizeBytes), "--chunk-size");
}
