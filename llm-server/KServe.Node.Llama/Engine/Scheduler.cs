namespace KServe.Node.Llama.Engine;

/// <summary>What the scheduler knows of a running sequence: no native state.</summary>
/// <param name="Key">Caller's handle for the sequence.</param>
/// <param name="PromptRemaining">Prompt tokens not yet decoded (0 once generating).</param>
/// <param name="HasPendingToken">A sampled token waits to be decoded (and nothing is left to recompute before it).</param>
/// <param name="AdmitOrder">Admission order: older sequences get prompt budget first.</param>
internal readonly record struct SchedSequence(int Key, int PromptRemaining, bool HasPendingToken, long AdmitOrder);

/// <summary>One sequence's share of a step.</summary>
internal readonly record struct SchedSlice(int Key, int Tokens, bool IsPrompt);

/// <summary>What to do about the KV cache before (or after) a decode.</summary>
internal enum KvAction
{
    /// <summary>Decode as planned.</summary>
    Proceed,

    /// <summary>Free the least recently used cached prefix, then ask again.</summary>
    EvictPrefix,

    /// <summary>Preempt the youngest running request and plan the step again.</summary>
    Preempt,

    /// <summary>Nothing left to take room from: fail the step's requests.</summary>
    Fail,
}

/// <summary>
/// The pure scheduling policy of the engine (no native calls): the per-step token budget, admission by free
/// sequence ids and KV cells, how room is made when the KV cache runs short (cached prefixes first, one at a time,
/// then preemption of the youngest request, never a kill while others run), and the queue timeout.
/// </summary>
internal static class Scheduler
{
    /// <summary>
    /// Plans one step: every generating sequence decodes its pending token (running streams never stall), then the
    /// remaining budget goes to prompt chunks, oldest admission first, so a long prompt is split across steps.
    /// </summary>
    public static List<SchedSlice> PlanStep(IReadOnlyList<SchedSequence> sequences, int budget)
    {
        var plan = new List<SchedSlice>(sequences.Count);
        var left = budget;
        foreach (var s in sequences)
        {
            if (s.HasPendingToken && left > 0)
            {
                plan.Add(new SchedSlice(s.Key, 1, IsPrompt: false));
                left--;
            }
        }

        foreach (var s in sequences.Where(s => s.PromptRemaining > 0 && !s.HasPendingToken).OrderBy(s => s.AdmitOrder))
        {
            if (left <= 0)
            {
                break;
            }

            var n = Math.Min(left, s.PromptRemaining);
            plan.Add(new SchedSlice(s.Key, n, IsPrompt: true));
            left -= n;
        }

        return plan;
    }

    /// <summary>
    /// Whether a request may start now. It needs <paramref name="choices"/> sequence slots and room in the KV
    /// cache for its uncached prompt plus one token per choice; <paramref name="evictableCells"/> are cells held
    /// only by idle cached prefixes, which admission may reclaim. Nothing is reserved for the output: when the
    /// cache runs short later, the youngest request is preempted (<see cref="PickVictim"/>) and recomputed.
    /// </summary>
    public static bool CanAdmit(int runningSequences, int maxParallel, int choices, int freeCells, int evictableCells, int uncachedPromptTokens)
        => runningSequences + choices <= maxParallel
           && freeCells + evictableCells >= uncachedPromptTokens + choices;

    /// <summary>
    /// The request to preempt when the next step does not fit the KV cache after evicting the cached prefixes: the
    /// most recently admitted one, so older requests, which have more invested, keep going.
    /// </summary>
    public static long PickVictim(IEnumerable<(long RequestId, long AdmitOrder)> running)
        => running.OrderByDescending(r => r.AdmitOrder).Select(r => r.RequestId).DefaultIfEmpty(-1).First();

    /// <summary>
    /// Before a step that adds <paramref name="stepTokens"/> cells: proceed when they fit; else evict a cached prefix
    /// while one is left; else preempt when several requests run. A request alone always proceeds (it was admitted
    /// only if prompt + n × max_tokens fits the context, so what does not fit is llama.cpp's to report).
    /// </summary>
    public static KvAction BeforeStep(int usedCells, int stepTokens, int capacity, bool hasCachedPrefix, int runningRequests)
        => usedCells + stepTokens <= capacity ? KvAction.Proceed
           : hasCachedPrefix ? KvAction.EvictPrefix
           : runningRequests >= 2 ? KvAction.Preempt
           : KvAction.Proceed;

    /// <summary>
    /// After llama.cpp found no KV slot for a step the ledger said fits (cells it keeps for itself): evict a cached
    /// prefix, else preempt while others run, else fail: the request cannot fit even alone.
    /// </summary>
    public static KvAction AfterNoSlot(bool hasCachedPrefix, int runningRequests)
        => hasCachedPrefix ? KvAction.EvictPrefix : runningRequests > 1 ? KvAction.Preempt : KvAction.Fail;

    /// <summary>A request never admitted that waited longer than the queue timeout (0: none) fails; a preempted one never does.</summary>
    public static bool QueueTimedOut(bool everAdmitted, double waitedSeconds, double timeoutSeconds)
        => timeoutSeconds > 0 && !everAdmitted && waitedSeconds > timeoutSeconds;

    /// <summary>Length of the longest common prefix of two token sequences.</summary>
    public static int CommonPrefix(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.CommonPrefixLength(b);
}
