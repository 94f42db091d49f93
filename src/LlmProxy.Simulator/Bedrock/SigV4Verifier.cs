using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>A request as the verifier sees it: everything exactly as it arrived on the wire.</summary>
/// <param name="Method">The HTTP method.</param>
/// <param name="RawPath">The path still percent-encoded as sent, without the query string.</param>
/// <param name="RawQuery">The query string as sent, without its leading '?'.</param>
/// <param name="Headers">Every header line; a name may repeat.</param>
/// <param name="Body">The body bytes.</param>
internal sealed record SigV4Request(
    string Method,
    string RawPath,
    string RawQuery,
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    ReadOnlyMemory<byte> Body);

/// <summary>
/// Verifies AWS Signature Version 4 (<c>Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...</c>)
/// the way an AWS front end does: it rebuilds the canonical request from what arrived, derives the signing key
/// from the secret of the presented access key id, and compares signatures. The rules it follows are AWS's
/// published ones for services other than S3; notably each path segment is URI-encoded again on top of its
/// wire encoding, so <c>/model/arn%3Aaws...</c> is signed as <c>/model/arn%253Aaws...</c>.
/// Failures get the exception names and messages AWS uses, so a gateway's signer is tested against the real rules.
/// </summary>
internal sealed class SigV4Verifier
{
    public const string Algorithm = "AWS4-HMAC-SHA256";
    public const string Terminator = "aws4_request";
    public const string UnsignedPayload = "UNSIGNED-PAYLOAD";

    /// <summary>How far <c>x-amz-date</c> may be from the server's clock, either way, as on AWS.</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(5);

    private const string AmzDateFormat = "yyyyMMdd'T'HHmmss'Z'";
    private const string DateStampFormat = "yyyyMMdd";

    private readonly IReadOnlyDictionary<string, string> _credentials;
    private readonly string _service;
    private readonly TimeProvider _time;

    /// <param name="credentials">Access key id to secret access key.</param>
    /// <param name="service">The signing name the credential scope must carry: <c>bedrock</c> for Bedrock Runtime.</param>
    /// <param name="time">The clock signatures are checked against.</param>
    public SigV4Verifier(IReadOnlyDictionary<string, string> credentials, string service, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        ArgumentException.ThrowIfNullOrEmpty(service);
        ArgumentNullException.ThrowIfNull(time);
        _credentials = credentials;
        _service = service;
        _time = time;
    }

    /// <summary>Returns null when the request is signed by a known identity, else the error AWS would answer with.</summary>
    public BedrockError? Verify(SigV4Request request)
    {
        ArgumentNullException.ThrowIfNull(request);

        var authorization = SingleHeader(request, "authorization");
        if (string.IsNullOrWhiteSpace(authorization))
        {
            return BedrockError.MissingAuthenticationToken();
        }

        if (!TryParseAuthorization(authorization, out var parsed, out var error))
        {
            return error;
        }

        var scope = parsed.Credential.Split('/');
        if (scope.Length != 5)
        {
            return BedrockError.IncompleteSignature(
                $"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{parsed.Credential}'");
        }

        var (accessKeyId, scopeDate, region, service, terminator) = (scope[0], scope[1], scope[2], scope[3], scope[4]);
        if (!_credentials.TryGetValue(accessKeyId, out var secret))
        {
            return BedrockError.UnrecognizedClient();
        }

        if (terminator != Terminator)
        {
            return BedrockError.InvalidSignature($"Credential should be scoped with a valid terminator: '{Terminator}', not '{terminator}'.");
        }

        if (service != _service)
        {
            return BedrockError.InvalidSignature($"Credential should be scoped to correct service: '{_service}'. ");
        }

        if (region.Length == 0)
        {
            return BedrockError.InvalidSignature("Credential should be scoped to a valid region. ");
        }

        if (!TryReadRequestDate(request, out var amzDate, out var signedAt, out error))
        {
            return error;
        }

        var dateStamp = signedAt.ToString(DateStampFormat, CultureInfo.InvariantCulture);
        if (scopeDate != dateStamp)
        {
            return BedrockError.InvalidSignature(
                $"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scopeDate}' != '{dateStamp}', from '{amzDate}'.");
        }

        if (CheckClock(signedAt, amzDate) is { } clockError)
        {
            return clockError;
        }

        var signedHeaders = parsed.SignedHeaders.Split(';').Select(name => name.Trim().ToLowerInvariant()).ToArray();
        if (!signedHeaders.Contains("host"))
        {
            return BedrockError.IncompleteSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
        }

        if (SingleHeader(request, "x-amz-security-token") is not null && !signedHeaders.Contains("x-amz-security-token"))
        {
            return BedrockError.IncompleteSignature("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization when it is sent.");
        }

        var canonicalRequest = CanonicalRequest(request, signedHeaders);
        var credentialScope = string.Join('/', scopeDate, region, service, terminator);
        var stringToSign = StringToSign(amzDate, credentialScope, canonicalRequest);
        var expected = Signature(secret, scopeDate, region, service, stringToSign);

        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(parsed.Signature.ToLowerInvariant())))
        {
            // Like AWS, say what was expected: it is what a developer needs to find the difference in their signer.
            return BedrockError.InvalidSignature(
                $"{BedrockError.SignatureMismatchMessage}\n\nThe Canonical String for this request should have been\n'{canonicalRequest}'\n\n"
                + $"The String-to-Sign should have been\n'{stringToSign}'\n");
        }

        return null;
    }

    /// <summary>
    /// The canonical request: method, canonical URI, canonical query, the signed headers with their canonical values,
    /// the signed header names, and the payload hash (<c>UNSIGNED-PAYLOAD</c> when <c>x-amz-content-sha256</c> says so,
    /// else the SHA-256 of the body that arrived, so a body changed after signing never verifies).
    /// </summary>
    internal static string CanonicalRequest(SigV4Request request, IReadOnlyList<string> signedHeaders)
    {
        var builder = new StringBuilder(512);
        builder.Append(request.Method.ToUpperInvariant()).Append('\n');
        builder.Append(CanonicalUri(request.RawPath)).Append('\n');
        builder.Append(CanonicalQuery(request.RawQuery)).Append('\n');
        foreach (var name in signedHeaders)
        {
            var values = request.Headers
                .Where(header => string.Equals(header.Key, name, StringComparison.OrdinalIgnoreCase))
                .Select(header => CanonicalHeaderValue(header.Value));
            builder.Append(name).Append(':').AppendJoin(',', values).Append('\n');
        }

        builder.Append('\n');
        builder.AppendJoin(';', signedHeaders).Append('\n');
        builder.Append(SingleHeader(request, "x-amz-content-sha256") == UnsignedPayload ? UnsignedPayload : HexSha256(request.Body.Span));
        return builder.ToString();
    }

    /// <summary>
    /// The raw path with empty, <c>.</c> and <c>..</c> segments resolved, and every segment URI-encoded (again: the
    /// wire form's <c>%</c> becomes <c>%25</c>), as AWS does for every service but S3.
    /// </summary>
    internal static string CanonicalUri(string rawPath)
    {
        var segments = new List<string>();
        foreach (var segment in rawPath.Split('/'))
        {
            switch (segment)
            {
                case "" or ".":
                    continue;
                case "..":
                    if (segments.Count > 0)
                    {
                        segments.RemoveAt(segments.Count - 1);
                    }

                    continue;
                default:
                    segments.Add(UriEncode(segment));
                    break;
            }
        }

        var path = "/" + string.Join('/', segments);
        return segments.Count > 0 && rawPath.EndsWith('/') ? path + "/" : path;
    }

    /// <summary>Parameters decoded, then each name and value URI-encoded and sorted by name, then value.</summary>
    internal static string CanonicalQuery(string rawQuery)
    {
        if (string.IsNullOrEmpty(rawQuery))
        {
            return string.Empty;
        }

        var parameters = rawQuery
            .Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair =>
            {
                var equals = pair.IndexOf('=');
                var name = equals < 0 ? pair : pair[..equals];
                var value = equals < 0 ? string.Empty : pair[(equals + 1)..];
                return (Name: UriEncode(Uri.UnescapeDataString(name)), Value: UriEncode(Uri.UnescapeDataString(value)));
            })
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .ThenBy(p => p.Value, StringComparer.Ordinal);
        return string.Join('&', parameters.Select(p => $"{p.Name}={p.Value}"));
    }

    internal static string StringToSign(string amzDate, string credentialScope, string canonicalRequest) =>
        $"{Algorithm}\n{amzDate}\n{credentialScope}\n{HexSha256(Encoding.UTF8.GetBytes(canonicalRequest))}";

    /// <summary>The hex HMAC of <paramref name="stringToSign"/> under the key derived from the secret and the scope.</summary>
    internal static string Signature(string secret, string dateStamp, string region, string service, string stringToSign)
    {
        var key = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + secret), Encoding.UTF8.GetBytes(dateStamp));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(region));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(service));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(Terminator));
        return Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
    }

    /// <summary>RFC 3986 encoding as SigV4 defines it: unreserved characters kept, every other UTF-8 byte as uppercase <c>%XX</c>.</summary>
    internal static string UriEncode(string value)
    {
        var builder = new StringBuilder(value.Length + 16);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~')
            {
                builder.Append(c);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }

    private static string HexSha256(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>Trimmed, with every run of whitespace inside collapsed to one space.</summary>
    private static string CanonicalHeaderValue(string value) =>
        string.Join(' ', value.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    private static string? SingleHeader(SigV4Request request, string name)
    {
        var values = request.Headers.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).ToArray();
        return values.Length == 0 ? null : string.Join(',', values);
    }

    private sealed record ParsedAuthorization(string Credential, string SignedHeaders, string Signature);

    private static bool TryParseAuthorization(string authorization, [NotNullWhen(true)] out ParsedAuthorization? parsed, [NotNullWhen(false)] out BedrockError? error)
    {
        parsed = null;
        error = null;
        var space = authorization.IndexOf(' ');
        var scheme = space < 0 ? authorization : authorization[..space];
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        if (scheme == Algorithm)
        {
            foreach (var part in authorization[(space + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var equals = part.IndexOf('=');
                if (equals > 0)
                {
                    fields[part[..equals].Trim()] = part[(equals + 1)..].Trim();
                }
            }
        }

        var missing = new[] { "Credential", "Signature", "SignedHeaders" }
            .Where(name => !fields.TryGetValue(name, out var value) || value.Length == 0)
            .Select(name => $"Authorization header requires '{name}' parameter.")
            .ToArray();
        if (missing.Length > 0)
        {
            error = BedrockError.IncompleteSignature($"{string.Join(' ', missing)} Authorization={scheme}");
            return false;
        }

        parsed = new ParsedAuthorization(fields["Credential"], fields["SignedHeaders"], fields["Signature"]);
        return true;
    }

    /// <summary>The signing time from <c>x-amz-date</c> (ISO 8601 basic), or from <c>Date</c> (RFC 1123) when that is absent.</summary>
    private static bool TryReadRequestDate(SigV4Request request, out string amzDate, out DateTimeOffset signedAt, [NotNullWhen(false)] out BedrockError? error)
    {
        error = null;
        signedAt = default;
        amzDate = SingleHeader(request, "x-amz-date") ?? string.Empty;
        if (amzDate.Length > 0)
        {
            if (DateTimeOffset.TryParseExact(amzDate, AmzDateFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out signedAt))
            {
                return true;
            }

            error = BedrockError.IncompleteSignature($"Date must be in ISO-8601 'basic format'. Got '{amzDate}'. See http://en.wikipedia.org/wiki/ISO_8601");
            return false;
        }

        if (SingleHeader(request, "date") is { Length: > 0 } date
            && DateTimeOffset.TryParseExact(date, "r", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out signedAt))
        {
            amzDate = signedAt.ToString(AmzDateFormat, CultureInfo.InvariantCulture);
            return true;
        }

        error = BedrockError.IncompleteSignature("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
        return false;
    }

    private BedrockError? CheckClock(DateTimeOffset signedAt, string amzDate)
    {
        var now = _time.GetUtcNow();
        string Format(DateTimeOffset value) => value.ToString(AmzDateFormat, CultureInfo.InvariantCulture);
        if (signedAt < now - MaxClockSkew)
        {
            return BedrockError.InvalidSignature($"Signature expired: {amzDate} is now earlier than {Format(now - MaxClockSkew)} ({Format(now)} - 5 min.)");
        }

        if (signedAt > now + MaxClockSkew)
        {
            return BedrockError.InvalidSignature($"Signature not yet current: {amzDate} is still later than {Format(now + MaxClockSkew)} ({Format(now)} + 5 min.)");
        }

        return null;
    }
}
