using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LlmProxy.Caching;

/// <summary>
/// The cache key of a chat completion request: <c>llmproxy:cache:{tenant}:{model}:{sha256}</c>.
/// <list type="bullet">
/// <item>The tenant is always part of the key; no request field or header can change that, so one tenant
/// can never be served another tenant's entry.</item>
/// <item>Tenant and model are percent-encoded (<see cref="Uri.EscapeDataString"/>), so a <c>:</c> in a name
/// cannot make two different (tenant, model) pairs produce the same prefix.</item>
/// <item>The hash covers the whole request body except <see cref="ExcludedFields"/>, in canonical form:
/// object keys sorted (ordinal), no whitespace, strings re-escaped uniformly, and numbers written by value
/// (<c>1</c>, <c>1.0</c> and <c>1e0</c> are equal; no floating-point rounding is involved).</item>
/// </list>
/// </summary>
internal static class ResponseCacheKey
{
    public const string Prefix = "llmproxy:cache:";

    /// <summary>
    /// Top-level fields that do not change the answer: whether it is streamed, and the stream's options. A
    /// streamed and a non-streamed request therefore share an entry. <c>user</c> is deliberately NOT excluded:
    /// an application that passes its end user's id there gets no sharing between its own end users.
    /// </summary>
    public static readonly IReadOnlySet<string> ExcludedFields = new HashSet<string>(StringComparer.Ordinal) { "stream", "stream_options" };

    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public static string Create(string tenant, string model, JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(body);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        ComputeHash(body, hash);
        return string.Concat(Prefix, Uri.EscapeDataString(tenant), ":", Uri.EscapeDataString(model), ":", Convert.ToHexStringLower(hash));
    }

    /// <summary>The key prefix of every entry of one tenant (for inspection and tests).</summary>
    public static string TenantPrefix(string tenant) => string.Concat(Prefix, Uri.EscapeDataString(tenant), ":");

    public static void ComputeHash(JsonObject body, Span<byte> destination)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        try
        {
            WriteCanonical(writer, body, topLevel: true);
            writer.Flush();
            SHA256.HashData(buffer.WrittenSpan, destination);
        }
        finally
        {
            if (buffer.Capacity > 1024 * 1024)
            {
                // Do not keep a huge request's buffer alive on this thread.
                t_buffer = null;
                t_writer = null;
            }
            else
            {
                buffer.ResetWrittenCount();
            }
        }
    }

    /// <summary>The canonical text of <paramref name="body"/> that is hashed (for tests and diagnostics).</summary>
    internal static string Canonicalize(JsonObject body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            WriteCanonical(writer, body, topLevel: true);
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteCanonical(Utf8JsonWriter writer, JsonNode? node, bool topLevel = false)
    {
        switch (node)
        {
            case null:
                writer.WriteNullValue();
                break;
            case JsonObject obj:
                WriteObject(writer, obj, topLevel);
                break;
            case JsonArray array:
                writer.WriteStartArray();
                foreach (var item in array)
                {
                    WriteCanonical(writer, item);
                }
                writer.WriteEndArray();
                break;
            case JsonValue value:
                WriteValue(writer, value);
                break;
        }
    }

    private static void WriteObject(Utf8JsonWriter writer, JsonObject obj, bool topLevel)
    {
        var count = obj.Count;
        var properties = ArrayPool<KeyValuePair<string, JsonNode?>>.Shared.Rent(Math.Max(count, 1));
        try
        {
            var n = 0;
            foreach (var property in obj)
            {
                if (topLevel && ExcludedFields.Contains(property.Key))
                {
                    continue;
                }
                properties[n++] = property;
            }
            Array.Sort(properties, 0, n, PropertyNameComparer.Instance);
            writer.WriteStartObject();
            for (var i = 0; i < n; i++)
            {
                writer.WritePropertyName(properties[i].Key);
                WriteCanonical(writer, properties[i].Value);
            }
            writer.WriteEndObject();
        }
        finally
        {
            ArrayPool<KeyValuePair<string, JsonNode?>>.Shared.Return(properties, clearArray: true);
        }
    }

    private static void WriteValue(Utf8JsonWriter writer, JsonValue value)
    {
        switch (value.GetValueKind())
        {
            case JsonValueKind.String:
                writer.WriteStringValue(value.GetValue<string>());
                break;
            case JsonValueKind.Number:
                var raw = value.TryGetValue<JsonElement>(out var element) ? element.GetRawText() : value.ToJsonString();
                writer.WriteRawValue(NormalizeNumber(raw), skipInputValidation: true);
                break;
            case JsonValueKind.True:
                writer.WriteBooleanValue(true);
                break;
            case JsonValueKind.False:
                writer.WriteBooleanValue(false);
                break;
            default:
                writer.WriteNullValue();
                break;
        }
    }

    /// <summary>
    /// Writes a JSON number by its exact decimal value: significant digits without leading or trailing zeros,
    /// and a power-of-ten exponent (<c>0.70</c> → <c>7e-1</c>, <c>100</c> → <c>1e2</c>, <c>-0</c> → <c>0</c>).
    /// Text that is not a plain JSON number is returned as it is.
    /// </summary>
    internal static string NormalizeNumber(string text)
    {
        var span = text.AsSpan().Trim();
        var negative = false;
        var i = 0;
        if (i < span.Length && span[i] == '-')
        {
            negative = true;
            i++;
        }
        Span<char> digits = span.Length <= 256 ? stackalloc char[span.Length] : new char[span.Length];
        var digitCount = 0;
        long exponent = 0;
        var seenDigit = false;
        for (; i < span.Length && char.IsAsciiDigit(span[i]); i++)
        {
            digits[digitCount++] = span[i];
            seenDigit = true;
        }
        if (i < span.Length && span[i] == '.')
        {
            i++;
            for (; i < span.Length && char.IsAsciiDigit(span[i]); i++)
            {
                digits[digitCount++] = span[i];
                exponent--;
                seenDigit = true;
            }
        }
        if (!seenDigit)
        {
            return text;
        }
        if (i < span.Length && (span[i] == 'e' || span[i] == 'E'))
        {
            i++;
            if (!long.TryParse(span[i..], System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var e)
                || e is > int.MaxValue or < int.MinValue)
            {
                return text;
            }
            exponent += e;
            i = span.Length;
        }
        if (i != span.Length)
        {
            return text;
        }

        var significant = digits[..digitCount].TrimStart('0');
        if (significant.IsEmpty)
        {
            return "0";
        }
        var trimmed = significant.TrimEnd('0');
        exponent += significant.Length - trimmed.Length;
        var result = string.Concat(negative ? "-" : "", trimmed);
        return exponent == 0 ? result : string.Concat(result, "e", exponent.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private sealed class PropertyNameComparer : IComparer<KeyValuePair<string, JsonNode?>>
    {
        public static readonly PropertyNameComparer Instance = new();

        public int Compare(KeyValuePair<string, JsonNode?> x, KeyValuePair<string, JsonNode?> y) => string.CompareOrdinal(x.Key, y.Key);
    }
}
