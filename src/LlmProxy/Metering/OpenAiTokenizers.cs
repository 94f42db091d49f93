using System.Collections.Concurrent;
using Microsoft.ML.Tokenizers;

namespace LlmProxy.Metering;

/// <summary>
/// OpenAI's own tokenizers (Microsoft.ML.Tokenizers: o200k_base for the gpt-4o, gpt-4.1, o-series and gpt-5 families,
/// cl100k_base for gpt-4, gpt-3.5 and the text-embedding-3 models, as the library maps model names), used to estimate
/// the tokens of a response the upstream reported no usage for. Nothing is loaded until an estimate for an OpenAI model
/// is needed: the first one creates that model's tokenizer (about half a second and 40 MB of heap for o200k_base);
/// users whose upstreams always report usage never pay for it. Other models get <see langword="null"/> and keep the
/// cheap estimate.
/// </summary>
internal sealed class OpenAiTokenizers
{
    // One entry per upstream model name seen in an estimate: those come from the configuration, not from clients.
    // Created on the first estimate, so that a gateway that never needs one does not even load the library.
    private ConcurrentDictionary<string, Lazy<Tokenizer?>>? _byModel;
    private int _loaded;

    /// <summary>How many models' tokenizers were created (the encodings' data are shared between models by the library).</summary>
    public int Loaded => Volatile.Read(ref _loaded);

    /// <summary>The tokenizer of <paramref name="upstreamModel"/>, or <see langword="null"/> when it is not an OpenAI model.</summary>
    public Tokenizer? ForModel(string? upstreamModel)
    {
        if (string.IsNullOrWhiteSpace(upstreamModel))
        {
            return null;
        }
        var byModel = LazyInitializer.EnsureInitialized(ref _byModel, () => new ConcurrentDictionary<string, Lazy<Tokenizer?>>(StringComparer.OrdinalIgnoreCase));
        return byModel.GetOrAdd(upstreamModel, model => new Lazy<Tokenizer?>(() => Create(model))).Value;
    }

    private Tokenizer? Create(string model)
    {
        try
        {
            var tokenizer = TiktokenTokenizer.CreateForModel(model);
            Interlocked.Increment(ref _loaded);
            return tokenizer;
        }
        catch (NotSupportedException)
        {
            return null; // not a model the library knows: the cheap estimate applies
        }
    }
}
