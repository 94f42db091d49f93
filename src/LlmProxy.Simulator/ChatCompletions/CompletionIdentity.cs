using LlmProxy.Simulator.OpenAi;

namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>The fields every object of one completion shares: all chunks of a stream carry the same id, created and fingerprint.</summary>
internal sealed record CompletionIdentity(string Id, long Created, string Model, string SystemFingerprint)
{
    /// <summary>Constant, because the simulated "backend configuration" never changes.</summary>
    internal const string Fingerprint = "fp_llmproxysim";

    public static CompletionIdentity Create(string model, TimeProvider time) =>
        new("chatcmpl-" + OpenAiHeaders.RandomHex(14), time.GetUtcNow().ToUnixTimeSeconds(), model, Fingerprint);
}
