using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace LlmProxy.Providers.Bedrock;

/// <summary>AWS credentials for one signature. The session token is set for temporary credentials.</summary>
internal sealed record AwsCredentials(string AccessKeyId, string SecretAccessKey, string? SessionToken = null)
{
    // Never print the secret or the token (records print every member by default).
    public override string ToString() => $"AwsCredentials {{ AccessKeyId = {AccessKeyId}, SessionToken = {(SessionToken is null ? "none" : "set")} }}";
}

/// <summary>Everything a signature was computed from, kept so tests can compare each step with AWS's published vectors.</summary>
internal sealed record SigV4Signature(string CanonicalRequest, string StringToSign, string Signature, string SignedHeaders, string Authorization);

/// <summary>
/// AWS Signature Version 4 (<c>AWS4-HMAC-SHA256</c>, header-based), written from AWS's specification
/// ("Create a signed AWS API request") and checked against AWS's SigV4 test suite. Pure: no clock, no I/O.
/// </summary>
internal static class SigV4Signer
{
    public const string Algorithm = "AWS4-HMAC-SHA256";
    public const string EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// <summary>The <c>x-amz-date</c> form of a timestamp: <c>20150830T123600Z</c>.</summary>
    public static string FormatAmzDate(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// Signs a request. <paramref name="headers"/> are the headers to sign (names in any case; <c>host</c> and
    /// <c>x-amz-date</c> must be among them, the date equal to <paramref name="time"/>); duplicates are joined with commas.
    /// </summary>
    public static SigV4Signature Sign(string method, string canonicalUri, string canonicalQuery,
        IEnumerable<KeyValuePair<string, string>> headers, string payloadHash,
        AwsCredentials credentials, string region, string service, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(credentials);

        var canonicalHeaders = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in headers)
        {
            var key = name.Trim().ToLowerInvariant();
            var normalized = CollapseSpaces(value);
            canonicalHeaders[key] = canonicalHeaders.TryGetValue(key, out var existing) ? existing + "," + normalized : normalized;
        }
        var signedHeaders = string.Join(';', canonicalHeaders.Keys);

        var canonical = new StringBuilder(512)
            .Append(method).Append('\n')
            .Append(canonicalUri).Append('\n')
            .Append(canonicalQuery).Append('\n');
        foreach (var (name, value) in canonicalHeaders)
        {
            canonical.Append(name).Append(':').Append(value).Append('\n');
        }
        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(payloadHash);
        var canonicalRequest = canonical.ToString();

        var amzDate = FormatAmzDate(time);
        var date = amzDate[..8];
        var scope = $"{date}/{region}/{service}/aws4_request";
        var stringToSign = $"{Algorithm}\n{amzDate}\n{scope}\n{HexSha256(Encoding.UTF8.GetBytes(canonicalRequest))}";

        var signingKey = DeriveSigningKey(credentials.SecretAccessKey, date, region, service);
        var signature = Convert.ToHexStringLower(HMACSHA256.HashData(signingKey, Encoding.UTF8.GetBytes(stringToSign)));
        var authorization = $"{Algorithm} Credential={credentials.AccessKeyId}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}";
        return new SigV4Signature(canonicalRequest, stringToSign, signature, signedHeaders, authorization);
    }

    /// <summary><c>kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")</c>.</summary>
    public static byte[] DeriveSigningKey(string secretAccessKey, string date, string region, string service)
    {
        var key = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + secretAccessKey), Encoding.UTF8.GetBytes(date));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(region));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(service));
        return HMACSHA256.HashData(key, "aws4_request"u8);
    }

    public static string HexSha256(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>
    /// The canonical URI of a path as it goes on the wire (already percent-encoded once, e.g. a model id
    /// escaped with <see cref="Uri.EscapeDataString(string)"/>). Every service but S3 encodes each segment
    /// once more, so <c>%3A</c> on the wire is <c>%253A</c> here. An empty path is <c>/</c>.
    /// </summary>
    public static string CanonicalUri(string wirePath)
    {
        if (string.IsNullOrEmpty(wirePath))
        {
            return "/";
        }
        var segments = wirePath.Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            segments[i] = UriEncode(segments[i]);
        }
        return string.Join('/', segments);
    }

    /// <summary>
    /// The canonical query string: each name and value decoded and re-encoded with <see cref="UriEncode"/>,
    /// sorted by name, then value (byte order). <paramref name="query"/> may start with <c>?</c>.
    /// </summary>
    public static string CanonicalQuery(string? query)
    {
        if (string.IsNullOrEmpty(query) || query == "?")
        {
            return "";
        }
        var pairs = new List<(string Name, string Value)>();
        foreach (var part in query.TrimStart('?').Split('&'))
        {
            if (part.Length == 0)
            {
                continue;
            }
            var eq = part.IndexOf('=');
            var name = eq < 0 ? part : part[..eq];
            var value = eq < 0 ? "" : part[(eq + 1)..];
            pairs.Add((UriEncode(Uri.UnescapeDataString(name)), UriEncode(Uri.UnescapeDataString(value))));
        }
        pairs.Sort((a, b) =>
        {
            var byName = string.CompareOrdinal(a.Name, b.Name);
            return byName != 0 ? byName : string.CompareOrdinal(a.Value, b.Value);
        });
        return string.Join('&', pairs.Select(p => p.Name + "=" + p.Value));
    }

    /// <summary>Percent-encodes every byte of the UTF-8 form except the unreserved <c>A-Z a-z 0-9 - _ . ~</c>, with upper-case hex.</summary>
    public static string UriEncode(string value)
    {
        var builder = new StringBuilder(value.Length + 16);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            if (b is >= (byte)'A' and <= (byte)'Z' or >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9'
                or (byte)'-' or (byte)'_' or (byte)'.' or (byte)'~')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }
        return builder.ToString();
    }

    /// <summary>Trims a header value and collapses runs of spaces into one, as canonical headers require.</summary>
    private static string CollapseSpaces(string value)
    {
        var trimmed = value.Trim();
        if (!trimmed.Contains("  ", StringComparison.Ordinal))
        {
            return trimmed;
        }
        var builder = new StringBuilder(trimmed.Length);
        var previousSpace = false;
        foreach (var c in trimmed)
        {
            if (c == ' ' && previousSpace)
            {
                continue;
            }
            previousSpace = c == ' ';
            builder.Append(c);
        }
        return builder.ToString();
    }
}
