namespace KServe.Node.Gguf;

/// <summary>
/// Presets for generated random-weight models used by the demo and the benchmarks. They carry a real
/// vocabulary (from a vocab-only GGUF) and a ChatML chat template, but their weights are random: their
/// output is meaningless text. The model name says so.
/// </summary>
public static class DemoModel
{
    /// <summary>The ChatML template (the same family llama-server falls back to) in Hugging Face Jinja form.</summary>
    public const string ChatMlTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    /// <summary>~60M parameters: 8 layers, n_embd 512, n_ff 1536 (with a 32k vocabulary), F16.</summary>
    public static GeneratedModelSpec Benchmark => new()
    {
        Layers = 8,
        EmbeddingLength = 512,
        FeedForwardLength = 1536,
        Heads = 8,
        HeadsKv = 8,
        ContextLength = 8192,
        WeightType = GeneratedWeightType.F16,
        Name = "random-weights-demo-60m",
        ChatTemplate = ChatMlTemplate,
    };

    /// <summary>A small model for the quick start: 4 layers, n_embd 256, F16.</summary>
    public static GeneratedModelSpec Demo => new()
    {
        Layers = 4,
        EmbeddingLength = 256,
        FeedForwardLength = 768,
        Heads = 4,
        HeadsKv = 4,
        ContextLength = 4096,
        WeightType = GeneratedWeightType.F16,
        Name = "random-weights-demo",
        ChatTemplate = ChatMlTemplate,
    };
}
