using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace LlmProxy.Simulator.OpenAi;

/// <summary>Identifiers and response headers that OpenAI puts on every answer, which gateways log and forward.</summary>
internal static class OpenAiHeaders
{
    /// <summary>Adds <c>x-request-id</c> and <c>openai-version</c> the way OpenAI does.</summary>
    public static void Apply(HttpResponse response)
    {
        response.Headers["x-request-id"] = "req_" + RandomHex(16);
        response.Headers["openai-version"] = "2020-10-01";
    }

    /// <summary>Lowercase hex of <paramref name="bytes"/> random bytes; ids are unique like OpenAI's, only the content is deterministic.</summary>
    public static string RandomHex(int bytes)
    {
        Span<byte> buffer = stackalloc byte[bytes];
        RandomNumberGenerator.Fill(buffer);
        return Convert.ToHexStringLower(buffer);
    }
}
