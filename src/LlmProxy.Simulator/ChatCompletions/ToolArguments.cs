using System.Buffers;
using System.Text.Json;
using LlmProxy.Simulator.OpenAi;

namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>
/// Builds the <c>arguments</c> JSON of a simulated tool call from the tool's parameter schema, so the
/// arguments validate against that schema and a client can really run the tool: strings are "sample",
/// numbers 1, booleans true, arrays hold one sample item, enums and consts take their first value.
/// </summary>
internal static class ToolArguments
{
    private const string SampleString = "sample";
    private const int MaxDepth = 8;

    public static string FromSchema(JsonElement? schema)
    {
        if (schema is not { ValueKind: JsonValueKind.Object } root || !LooksLikeObject(root))
        {
            return "{}";
        }

        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer, WireJson.WriterOptions))
        {
            WriteSample(writer, root, depth: 0);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteSample(Utf8JsonWriter writer, JsonElement schema, int depth)
    {
        if (schema.ValueKind != JsonValueKind.Object)
        {
            writer.WriteStringValue(SampleString);
            return;
        }

        if (schema.TryGetProperty("const", out var constant))
        {
            constant.WriteTo(writer);
            return;
        }

        if (schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array && values.GetArrayLength() > 0)
        {
            values[0].WriteTo(writer);
            return;
        }

        foreach (var combinator in (ReadOnlySpan<string>)["anyOf", "oneOf", "allOf"])
        {
            if (schema.TryGetProperty(combinator, out var options) && options.ValueKind == JsonValueKind.Array && options.GetArrayLength() > 0)
            {
                WriteSample(writer, FirstNonNull(options), depth);
                return;
            }
        }

        switch (ReadType(schema))
        {
            case "object":
                WriteObject(writer, schema, depth);
                break;
            case "array":
                writer.WriteStartArray();
                if (depth < MaxDepth && schema.TryGetProperty("items", out var items))
                {
                    WriteSample(writer, items, depth + 1);
                }

                writer.WriteEndArray();
                break;
            case "integer" or "number":
                writer.WriteNumberValue(1);
                break;
            case "boolean":
                writer.WriteBooleanValue(true);
                break;
            case "null":
                writer.WriteNullValue();
                break;
            default:
                writer.WriteStringValue(SampleString);
                break;
        }
    }

    private static void WriteObject(Utf8JsonWriter writer, JsonElement schema, int depth)
    {
        writer.WriteStartObject();
        if (depth < MaxDepth && schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in properties.EnumerateObject())
            {
                writer.WritePropertyName(property.Name);
                WriteSample(writer, property.Value, depth + 1);
            }
        }

        writer.WriteEndObject();
    }

    /// <summary>The schema's type; the first non-null one when <c>type</c> is an array; "object" when it only has properties.</summary>
    private static string? ReadType(JsonElement schema)
    {
        if (schema.TryGetProperty("type", out var type))
        {
            if (type.ValueKind == JsonValueKind.String)
            {
                return type.GetString();
            }

            if (type.ValueKind == JsonValueKind.Array)
            {
                var named = type.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString()).ToList();
                return named.FirstOrDefault(t => t != "null") ?? named.FirstOrDefault();
            }
        }

        return schema.TryGetProperty("properties", out _) ? "object" : null;
    }

    private static bool LooksLikeObject(JsonElement schema) => ReadType(schema) is "object" or null;

    private static JsonElement FirstNonNull(JsonElement options)
    {
        foreach (var option in options.EnumerateArray())
        {
            if (option.ValueKind != JsonValueKind.Object || ReadType(option) != "null")
            {
                return option;
            }
        }

        return options[0];
    }
}
