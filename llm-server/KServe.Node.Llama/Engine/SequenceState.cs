using System.Threading.Channels;
using KServe.Node.Llama.Native;

namespace KServe.Node.Llama.Engine;

internal sealed class RequestState(long id, GenerationRequest request, Channel<GenerationEvent> channel, GenerationHandle handle)
{
    public long Id { get; } = id;
    public GenerationRequest Request { get; } = request;
    public Channel<GenerationEvent> Channel { get; } = channel;
    public GenerationHandle Handle { get; } = handle;
    public ChoiceState[] Choices { get; set; } = [];
    public long AdmitOrder { get; set; }

    /// <summary>Stopwatch timestamps: submitted, admitted (KV granted), first token sampled by any choice.</summary>
    public long SubmittedAt { get; } = System.Diagnostics.Stopwatch.GetTimestamp();
    public long AdmittedAt { get; set; }
    public long FirstTokenAt { get; set; }
    public int CachedTokens { get; set; }
    public int Finished { get; set; }

    /// <summary>The request was preempted after it produced tokens: on re-admission each choice recomputes its own tokens.</summary>
    public bool Resumed { get; set; }
    public int Preemptions { get; set; }
    public bool Cancelled => Request.CancellationToken.IsCancellationRequested;

    /// <summary>Wakes the loop when the request is cancelled; disposed when the request ends.</summary>
    public CancellationTokenRegistration Registration { get; set; }

    /// <summary>Sequence ids the request holds, -1 for a choice without one (for tests: its KV must be gone after cancellation).</summary>
    public int[] SequenceIds => Choices.Select(c => c.Seq?.Value ?? -1).ToArray();
}

internal sealed class ChoiceState(RequestState owner, int index, SafeLlamaSamplerHandle sampler)
{
    public RequestState Owner { get; } = owner;
    public int Index { get; } = index;
    public SafeLlamaSamplerHandle Sampler { get; } = sampler;
    public TextAssembler Text { get; } = new(owner.Request.Stop);

    /// <summary>Tokens whose KV is in the cache: positions 0..Tokens.Count-1 of <see cref="Seq"/>.</summary>
    public List<int> Tokens { get; } = new(owner.Request.PromptTokens.Length + Math.Max(0, owner.Request.MaxTokens));

    /// <summary>The sequence holding the choice's KV while it runs (null while it waits).</summary>
    public SeqId? Seq { get; set; }

    /// <summary>
    /// After a preemption, the tokens this choice had in the KV cache (prompt and completion so far), to be decoded
    /// again before it continues with its pending token; null: the request's prompt.
    /// </summary>
    public int[]? Replay { get; set; }

    /// <summary>What the prompt phase decodes: the prompt, or the tokens to recompute after a preemption.</summary>
    public int[] Source => Replay ?? Owner.Request.PromptTokens;

    /// <summary>Next index of <see cref="Source"/> to decode.</summary>
    public int PromptPos { get; set; }

    public int PendingToken { get; set; } = -1;
    public int Completion { get; set; }
    public int PromptDecoded { get; set; }
    public bool Done { get; set; }

    /// <summary>Choices after the first wait for the first to finish the prompt, then copy its KV.</summary>
    public bool WaitsForSibling { get; set; }
    public int BatchOutput { get; set; } = -1;
    public int PromptRemaining => Source.Length - PromptPos;
}
