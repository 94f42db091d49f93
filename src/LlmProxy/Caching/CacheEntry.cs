using System.Buffers.Binary;

namespace LlmProxy.Caching;

/// <summary>
/// The stored form of a cached response: a 10-byte header (format version, reserved flags byte, the time it was
/// stored as Unix milliseconds, little-endian) followed by the <c>chat.completion</c> JSON exactly as a
/// non-streamed client receives it. Streamed responses are stored in the same form and replayed as chunks.
/// </summary>
internal static class CacheEntry
{
    public const byte FormatVersion = 1;
    public const int HeaderSize = 10;

    public static byte[] Create(ReadOnlySpan<byte> completionJson, DateTimeOffset storedAt)
    {
        var entry = new byte[HeaderSize + completionJson.Length];
        entry[0] = FormatVersion;
        entry[1] = 0;
        BinaryPrimitives.WriteInt64LittleEndian(entry.AsSpan(2, 8), storedAt.ToUnixTimeMilliseconds());
        completionJson.CopyTo(entry.AsSpan(HeaderSize));
        return entry;
    }

    /// <summary>Reads an entry; false for bytes that are not an entry of this format (e.g. written by another version).</summary>
    public static bool TryRead(byte[] entry, out DateTimeOffset storedAt, out ReadOnlyMemory<byte> completionJson)
    {
        if (entry.Length <= HeaderSize || entry[0] != FormatVersion)
        {
            storedAt = default;
            completionJson = default;
            return false;
        }
        var millis = BinaryPrimitives.ReadInt64LittleEndian(entry.AsSpan(2, 8));
        if (millis < 0 || millis > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())
        {
            storedAt = default;
            completionJson = default;
            return false;
        }
        storedAt = DateTimeOffset.FromUnixTimeMilliseconds(millis);
        completionJson = entry.AsMemory(HeaderSize);
        return true;
    }
}
