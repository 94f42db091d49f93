using System.Buffers;
using System.Text.Json;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;

namespace LlmProxy.Providers.OpenAi;

/// <summary>What <see cref="OpenAiChunkRewriter.Rewrite"/> made of one streamed event.</summary>
internal enum ChunkRewrite
{
    /// <summary>The rewritten chunk is in the output: send it.</summary>
    Chunk,

    /// <summary>The usage-only chunk the gateway asked for on behalf of a client that did not: send nothing.</summary>
    Skip,

    /// <summary>The event is an error object (<c>{"error":{...}}</c>): nothing was written.</summary>
    Error,

    /// <summary>The event is not one JSON object: nothing was written.</summary>
    Malformed,
}

/// <summary>
/// Copies an OpenAI <c>chat.completion.chunk</c> from an OpenAI-compatible upstream to the client without building a JSON
/// tree: one forward-only <see cref="Utf8JsonReader"/> pass (which also validates the event) finds the top-level
/// <c>model</c> value, the <c>usage</c> property and whether <c>choices</c> is empty; the output is the event's own bytes
/// with the model value replaced (added last when absent) and, for clients that did not ask for usage, the usage property
/// cut out. Everything else, nested <c>model</c> keys included, is copied unchanged.
/// </summary>
internal static class OpenAiChunkRewriter
{
    /// <param name="data">The event's data: one JSON object.</param>
    /// <param name="encodedModel">The client's model name, JSON-escaped, without quotes.</param>
    /// <param name="keepUsage">Whether the client asked for usage (<c>stream_options.include_usage</c>).</param>
    /// <param name="output">Receives the rewritten chunk when the result is <see cref="ChunkRewrite.Chunk"/>.</param>
    /// <param name="usage">The usage the chunk carried, whatever the result but <see cref="ChunkRewrite.Malformed"/>.</param>
    public static ChunkRewrite Rewrite(ReadOnlySpan<byte> data, ReadOnlySpan<byte> encodedModel, bool keepUsage, IBufferWriter<byte> output, out TokenUsage? usage)
    {
        usage = null;
        int modelStart = -1, modelEnd = -1, usageStart = -1, usageEnd = -1, objectEnd, properties = 0;
        bool usageFirst = false, usageIsObject = false, choicesEmpty = false, isError = false;
        try
        {
            var reader = new Utf8JsonReader(data);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return ChunkRewrite.Malformed;
            }
            var previousValueEnd = -1;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                properties++;
                var nameStart = (int)reader.TokenStartIndex;
                if (usageFirst)
                {
                    // The usage property came first: cutting it takes the separator up to this property's name.
                    usageEnd = nameStart;
                    usageFirst = false;
                }
                var name = Classify(ref reader);
                reader.Read();
                var valueStart = (int)reader.TokenStartIndex;
                switch (name)
                {
                    case Property.Model:
                        if (modelStart >= 0)
                        {
                            return ChunkRewrite.Malformed;
                        }
                        reader.Skip();
                        modelStart = valueStart;
                        modelEnd = (int)reader.BytesConsumed;
                        break;
                    case Property.Usage:
                        if (usageStart >= 0)
                        {
                            return ChunkRewrite.Malformed;
                        }
                        usageIsObject = reader.TokenType == JsonTokenType.StartObject;
                        usage = OpenAiUsage.Read(ref reader);
                        usageEnd = (int)reader.BytesConsumed;
                        if (previousValueEnd >= 0)
                        {
                            usageStart = previousValueEnd; // from the end of the previous value: the comma goes with it
                        }
                        else
                        {
                            usageStart = nameStart;
                            usageFirst = true;
                        }
                        break;
                    case Property.Choices:
                        if (reader.TokenType == JsonTokenType.StartArray)
                        {
                            var lookahead = reader;
                            choicesEmpty = lookahead.Read() && lookahead.TokenType == JsonTokenType.EndArray;
                        }
                        reader.Skip();
                        break;
                    case Property.Error:
                        isError |= reader.TokenType == JsonTokenType.StartObject;
                        reader.Skip();
                        break;
                    default:
                        reader.Skip();
                        break;
                }
                previousValueEnd = (int)reader.BytesConsumed;
            }
            objectEnd = (int)reader.TokenStartIndex;
            if (reader.Read())
            {
                return ChunkRewrite.Malformed;
            }
        }
        catch (JsonException)
        {
            usage = null;
            return ChunkRewrite.Malformed;
        }

        if (isError)
        {
            return ChunkRewrite.Error;
        }
        if (!keepUsage && choicesEmpty && usageIsObject)
        {
            return ChunkRewrite.Skip;
        }
        var cutUsage = !keepUsage && usageStart >= 0;
        var position = 0;
        if (modelStart >= 0 && (!cutUsage || modelStart < usageStart))
        {
            Write(output, data[..modelStart]);
            WriteModel(output, encodedModel);
            position = modelEnd;
        }
        if (cutUsage)
        {
            Write(output, data[position..usageStart]);
            position = usageEnd;
            properties--;
            if (modelStart > usageStart)
            {
                Write(output, data[position..modelStart]);
                WriteModel(output, encodedModel);
                position = modelEnd;
            }
        }
        if (modelStart < 0)
        {
            // No model in the chunk: add the client's as the last property.
            Write(output, data[position..objectEnd]);
            Write(output, properties > 0 ? ",\"model\":"u8 : "\"model\":"u8);
            WriteModel(output, encodedModel);
            position = objectEnd;
        }
        Write(output, data[position..]);
        return ChunkRewrite.Chunk;
    }

    private enum Property
    {
        Other,
        Model,
        Usage,
        Choices,
        Error,
    }

    private static Property Classify(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("model"u8) ? Property.Model
        : reader.ValueTextEquals("usage"u8) ? Property.Usage
        : reader.ValueTextEquals("choices"u8) ? Property.Choices
        : reader.ValueTextEquals("error"u8) ? Property.Error
        : Property.Other;

    private static void WriteModel(IBufferWriter<byte> output, ReadOnlySpan<byte> encodedModel)
    {
        var span = output.GetSpan(encodedModel.Length + 2);
        span[0] = (byte)'"';
        encodedModel.CopyTo(span[1..]);
        span[encodedModel.Length + 1] = (byte)'"';
        output.Advance(encodedModel.Length + 2);
    }

    private static void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
    {
        if (!bytes.IsEmpty)
        {
            output.Write(bytes);
        }
    }
}
