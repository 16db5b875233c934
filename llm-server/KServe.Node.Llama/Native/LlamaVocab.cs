using System.Text;

namespace KServe.Node.Llama.Native;

/// <summary>A model's <c>llama_vocab</c> (owned by the model, which must outlive it). Every method is thread-safe.</summary>
internal readonly unsafe struct LlamaVocab
{
    private readonly IntPtr _vocab;

    public LlamaVocab(SafeLlamaModelHandle model)
    {
        _vocab = NativeMethods.llama_model_get_vocab(model);
        Count = NativeMethods.llama_vocab_n_tokens(_vocab);
    }

    /// <summary>Tokens in the vocabulary.</summary>
    public int Count { get; }

    public int Bos => NativeMethods.llama_vocab_bos(_vocab);

    public int Eos => NativeMethods.llama_vocab_eos(_vocab);

    public bool AddBos => NativeMethods.llama_vocab_get_add_bos(_vocab);

    /// <summary>The fill-in-the-middle tokens (prefix, suffix, middle), or null when the model lacks one.</summary>
    public FimTokens? Fim
    {
        get
        {
            int[] fim = [NativeMethods.llama_vocab_fim_pre(_vocab), NativeMethods.llama_vocab_fim_suf(_vocab), NativeMethods.llama_vocab_fim_mid(_vocab)];
            return fim.All(t => t >= 0) ? new FimTokens(fim[0], fim[1], fim[2]) : null;
        }
    }

    public bool Contains(int token) => (uint)token < (uint)Count;

    /// <summary>End of generation (EOS, EOT and the like).</summary>
    public bool IsEndOfGeneration(int token) => NativeMethods.llama_vocab_is_eog(_vocab, token);

    /// <summary>The native handle, for the grammar sampler.</summary>
    internal IntPtr Handle => _vocab;

    public int[] Tokenize(string text, bool addSpecial, bool parseSpecial)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var capacity = bytes.Length + 8;
        while (true)
        {
            var tokens = new int[capacity];
            int n;
            fixed (byte* b = bytes)
            fixed (int* t = tokens)
            {
                n = NativeMethods.llama_tokenize(_vocab, b, bytes.Length, t, capacity, addSpecial, parseSpecial);
            }

            if (n >= 0)
            {
                return tokens[..n];
            }

            capacity = -n;
        }
    }

    public string Detokenize(ReadOnlySpan<int> tokens, bool special)
    {
        var capacity = tokens.Length * 8 + 16;
        while (true)
        {
            var buf = new byte[capacity];
            int n;
            fixed (int* t = tokens)
            fixed (byte* b = buf)
            {
                n = NativeMethods.llama_detokenize(_vocab, t, tokens.Length, b, capacity, false, special);
            }

            if (n >= 0)
            {
                return Encoding.UTF8.GetString(buf, 0, n);
            }

            capacity = -n;
        }
    }

    /// <summary>Writes a token's bytes into <paramref name="buffer"/>; returns how many (0 when it has none or does not fit).</summary>
    public int Piece(int token, Span<byte> buffer, bool special)
    {
        fixed (byte* b = buffer)
        {
            return Math.Max(0, NativeMethods.llama_token_to_piece(_vocab, token, b, buffer.Length, 0, special));
        }
    }

    /// <summary>A token's text (special tokens rendered when <paramref name="special"/>).</summary>
    public string TokenText(int token, bool special)
    {
        if (token < 0)
        {
            return "";
        }

        Span<byte> buf = stackalloc byte[256];
        var n = Piece(token, buf, special);
        return Encoding.UTF8.GetString(buf[..n]);
    }
}
