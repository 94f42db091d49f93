using System.Net.Http.Headers;

namespace LlmProxy.Providers;

/// <summary>Adds <c>Authorization: Bearer</c> with a key read from an environment variable when configuration is loaded.</summary>
internal sealed class BearerTokenAuthenticator : IUpstreamAuthenticator
{
    /// <summary>What a repeated key is replaced with in upstream text.</summary>
    internal const string Mask = "[redacted]";

    private readonly AuthenticationHeaderValue? _header;
    private readonly string? _key;

    private BearerTokenAuthenticator(string? key, string? unavailableReason)
    {
        _key = key;
        _header = key is null ? null : new AuthenticationHeaderValue("Bearer", key);
        UnavailableReason = unavailableReason;
    }

    public string? UnavailableReason { get; }

    /// <summary>No variable configured means the upstream needs no key (a local vLLM or Ollama, say).</summary>
    public static BearerTokenAuthenticator FromEnvironment(string? variable)
    {
        if (string.IsNullOrWhiteSpace(variable))
        {
            return new BearerTokenAuthenticator(null, null);
        }
        var key = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrWhiteSpace(key)
            ? new BearerTokenAuthenticator(null, $"environment variable {variable} is not set")
            : new BearerTokenAuthenticator(key.Trim(), null);
    }

    public ValueTask AuthenticateAsync(HttpRequestMessage request, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        if (_header is not null)
        {
            request.Headers.Authorization = _header;
        }
        return ValueTask.CompletedTask;
    }

    public string Redact(string text) =>
        _key is null || !text.Contains(_key, StringComparison.Ordinal) ? text : text.Replace(_key, Mask, StringComparison.Ordinal);
}
