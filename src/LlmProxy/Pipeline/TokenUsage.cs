namespace LlmProxy.Pipeline;

/// <summary>Token counts of one response, in OpenAI's terms.</summary>
/// <param name="CachedPromptTokens">Prompt tokens served from the provider's prompt cache, where it reports them.</param>
/// <param name="Estimated">True when the upstream gave no usage and the gateway estimated it (e.g. a stream cut short).</param>
public sealed record TokenUsage(int PromptTokens, int CompletionTokens, int TotalTokens, int? CachedPromptTokens = null, bool Estimated = false);
