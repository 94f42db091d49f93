using System.Security.Cryptography;
using System.Text;

namespace LlmProxy.Tenancy;

/// <summary>
/// Keys are stored as SHA-256 hashes (lowercase hex) so that configuration never holds a usable secret.
/// API keys are long random strings, so a plain unsalted hash is enough: there is nothing to brute-force.
/// </summary>
public static class ApiKeyHasher
{
    public static string Hash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        var maxBytes = Encoding.UTF8.GetMaxByteCount(key.Length);
        byte[]? rented = null;
        Span<byte> utf8 = maxBytes <= 512 ? stackalloc byte[512] : (rented = new byte[maxBytes]);
        var written = Encoding.UTF8.GetBytes(key, utf8);
        SHA256.HashData(utf8[..written], hash);
        return Convert.ToHexStringLower(hash);
    }

    public static bool IsValidHash(string? value) =>
        value is { Length: SHA256.HashSizeInBytes * 2 } && value.All(Uri.IsHexDigit);

    /// <summary>Creates a new random key in the same style as OpenAI's: a prefix and 48 url-safe characters.</summary>
    public static string NewKey()
    {
        Span<byte> random = stackalloc byte[36];
        RandomNumberGenerator.Fill(random);
        return "sk-llmproxy-" + Convert.ToBase64String(random).Replace('+', '-').Replace('/', '_');
    }
}
