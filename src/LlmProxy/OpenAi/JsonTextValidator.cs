using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace LlmProxy.OpenAi;

/// <summary>
/// Checks every string of a JSON body (property names and values) once, where the body is parsed: invalid UTF-8 and
/// lone surrogate escapes (<c>"\ud800"</c>) are client errors, found here with the path of the field they are in. Without
/// this check they surface much later, as an exception wherever a stage first turns that string into text (the cache key,
/// a provider's request builder), and that would be a 500. One forward pass with <see cref="Utf8JsonReader"/>; each string
/// is checked in place (<see cref="Utf8.IsValid"/>, then its <c>\u</c> escapes), nothing is copied or allocated.
/// </summary>
internal static class JsonTextValidator
{
    private const int MaxParamLength = 256;

    /// <summary>
    /// The 400 <c>invalid_value</c> for the first string of <paramref name="json"/> that is not valid Unicode text, or null
    /// when every string is. <paramref name="json"/> must already be known to be well-formed JSON (structural errors are
    /// the parser's to report); should it not be, null is returned and the parser's own error stands.
    /// </summary>
    public static GatewayError? Validate(ReadOnlySpan<byte> json, int maxDepth = 64)
    {
        if (!TryFindInvalidString(json, maxDepth, out var param, out var inPropertyName))
        {
            return null;
        }
        var where = param is null ? "the request body" : $"'{param}'";
        var what = inPropertyName ? "A property name in " + where : where;
        return GatewayErrors.BadRequest($"{Capitalize(what)} is not valid Unicode text: it contains invalid UTF-8 or an unpaired "
            + "surrogate escape (such as \\ud800 without a low surrogate after it). Send the text as UTF-8, and escape only complete surrogate pairs.",
            param, "invalid_value");
    }

    /// <summary>
    /// Whether <paramref name="json"/> holds a string that is not valid Unicode text. <paramref name="param"/> is the path of
    /// the value it is (<c>messages[0].content</c>), or of the object whose property name it is; null at the top level.
    /// </summary>
    public static bool TryFindInvalidString(ReadOnlySpan<byte> json, int maxDepth, out string? param, out bool inPropertyName)
    {
        param = null;
        inPropertyName = false;
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = maxDepth });
        // One frame per open container: the array index, or the offset of the current property name in the body.
        Span<Frame> initial = stackalloc Frame[16];
        var frames = new FrameStack(initial);
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        frames.CountValue();
                        frames.Push(new Frame(reader.TokenType == JsonTokenType.StartArray));
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        frames.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        if (!IsValidText(ref reader))
                        {
                            param = frames.Path(json, includeLast: false);
                            inPropertyName = true;
                            return true;
                        }
                        frames.SetName((int)reader.TokenStartIndex, reader.ValueSpan.Length, reader.ValueIsEscaped);
                        break;
                    case JsonTokenType.String:
                        frames.CountValue();
                        if (!IsValidText(ref reader))
                        {
                            param = frames.Path(json, includeLast: true);
                            return true;
                        }
                        break;
                    default:
                        frames.CountValue();
                        break;
                }
            }
        }
        catch (JsonException)
        {
            // Not well-formed: the parser reports that.
        }
        finally
        {
            frames.Dispose();
        }
        return false;
    }

    private static bool IsValidText(ref Utf8JsonReader reader)
    {
        var raw = reader.ValueSpan;
        // Escapes are ASCII, so the raw bytes must be UTF-8 on their own, escaped or not (a multi-byte sequence cut by an
        // escape is invalid here too). What an escape adds is a UTF-16 code unit: those must pair up.
        return Utf8.IsValid(raw) && (!reader.ValueIsEscaped || SurrogateEscapesPair(raw));
    }

    /// <summary>
    /// Whether every <c>\uD800</c>-<c>\uDBFF</c> escape is followed by a <c>\uDC00</c>-<c>\uDFFF</c> one, and no low surrogate
    /// stands alone. The reader has already checked that each escape is well-formed. Scanning for the escapes costs a
    /// fraction of unescaping the string (<see cref="Utf8JsonReader.CopyString(Span{byte})"/>), which long prompts with many
    /// escapes made the most expensive part of the check.
    /// </summary>
    private static bool SurrogateEscapesPair(ReadOnlySpan<byte> raw)
    {
        var i = raw.IndexOf((byte)'\\');
        while (i >= 0)
        {
            if (raw[i + 1] != (byte)'u')
            {
                i += 2;
            }
            else
            {
                var unit = Hex4(raw.Slice(i + 2, 4));
                i += 6;
                if (char.IsLowSurrogate(unit))
                {
                    return false;
                }
                if (char.IsHighSurrogate(unit))
                {
                    if (i + 6 > raw.Length || raw[i] != (byte)'\\' || raw[i + 1] != (byte)'u' || !char.IsLowSurrogate(Hex4(raw.Slice(i + 2, 4))))
                    {
                        return false;
                    }
                    i += 6;
                }
            }
            var next = raw[i..].IndexOf((byte)'\\');
            i = next < 0 ? -1 : i + next;
        }
        return true;
    }

    private static char Hex4(ReadOnlySpan<byte> digits) =>
        (char)ushort.Parse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);

    private static string Capitalize(string text) => text.Length > 0 && char.IsLower(text[0]) ? char.ToUpperInvariant(text[0]) + text[1..] : text;

    private readonly struct Frame(bool isArray)
    {
        public bool IsArray { get; } = isArray;

        /// <summary>Index of the current element (arrays), -1 before the first.</summary>
        public int Index { get; init; } = -1;

        /// <summary>Offset of the current property name's opening quote in the body (objects), -1 before the first.</summary>
        public int NameStart { get; init; } = -1;

        public int NameLength { get; init; }

        public bool NameEscaped { get; init; }
    }

    /// <summary>A stack of frames on the stack (16 deep), moving to a pooled array beyond that.</summary>
    private ref struct FrameStack(Span<Frame> initial)
    {
        private Span<Frame> _frames = initial;
        private Frame[]? _rented;
        private int _count;

        public void Push(Frame frame)
        {
            if (_count == _frames.Length)
            {
                var larger = ArrayPool<Frame>.Shared.Rent(_frames.Length * 2);
                _frames.CopyTo(larger);
                if (_rented is not null)
                {
                    ArrayPool<Frame>.Shared.Return(_rented);
                }
                _frames = _rented = larger;
            }
            _frames[_count++] = frame;
        }

        public void Pop() => _count--;

        /// <summary>A value starts in the innermost container: in an array, it is the next element.</summary>
        public void CountValue()
        {
            if (_count > 0 && _frames[_count - 1].IsArray)
            {
                _frames[_count - 1] = _frames[_count - 1] with { Index = _frames[_count - 1].Index + 1 };
            }
        }

        public void SetName(int tokenStart, int length, bool escaped) =>
            _frames[_count - 1] = _frames[_count - 1] with { NameStart = tokenStart, NameLength = length, NameEscaped = escaped };

        /// <summary>
        /// <c>messages[0].content</c>: every container's current element or property; without the innermost one's when
        /// <paramref name="includeLast"/> is false (the bad string is a property name of that object). Null when empty.
        /// Names come from the body; they were checked before the reader went past them.
        /// </summary>
        public readonly string? Path(ReadOnlySpan<byte> json, bool includeLast)
        {
            var builder = new StringBuilder();
            var count = includeLast ? _count : _count - 1;
            for (var i = 0; i < count && builder.Length <= MaxParamLength; i++)
            {
                var frame = _frames[i];
                if (frame.IsArray)
                {
                    builder.Append('[').Append(frame.Index).Append(']');
                }
                else if (frame.NameStart >= 0)
                {
                    if (builder.Length > 0)
                    {
                        builder.Append('.');
                    }
                    builder.Append(Name(json, frame));
                }
            }
            if (builder.Length > MaxParamLength)
            {
                builder.Length = MaxParamLength;
                builder.Append('…');
            }
            return builder.Length == 0 ? null : builder.ToString();
        }

        private static string Name(ReadOnlySpan<byte> json, Frame frame)
        {
            // The token starts at the opening quote; the name's bytes follow it.
            var raw = json.Slice(frame.NameStart + 1, Math.Min(frame.NameLength, MaxParamLength * 6));
            if (!frame.NameEscaped)
            {
                return Encoding.UTF8.GetString(raw);
            }
            var reader = new Utf8JsonReader(json.Slice(frame.NameStart, frame.NameLength + 2));
            return reader.Read() ? reader.GetString() ?? "" : "";
        }

        public void Dispose()
        {
            if (_rented is not null)
            {
                ArrayPool<Frame>.Shared.Return(_rented);
                _rented = null;
            }
        }
    }
}
