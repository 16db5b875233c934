namespace KServe.Node.Llama.Native;

/// <summary>A llama.cpp sequence id (<c>llama_seq_id</c>): one sequence of the context's unified KV cache.</summary>
internal readonly record struct SeqId(int Value)
{
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
