using System.Text.Encodings.Web;
using System.Text.Json;

namespace LlmProxy.Simulator.OpenAi;

/// <summary>
/// JSON settings for everything the simulator writes. The default encoder escapes quotes and non-ASCII as
/// <c>\u0022</c>-style sequences, which is valid but unlike OpenAI's output and makes streamed argument fragments
/// hard to read; the relaxed encoder writes <c>\"</c> and UTF-8 as is. It is safe here: nothing is embedded in HTML.
/// </summary>
internal static class WireJson
{
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Serializer options for the control surface: web defaults (camelCase) with the same encoder.</summary>
    public static JsonSerializerOptions ControlOptions(bool indented) => new(JsonSerializerDefaults.Web)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        WriteIndented = indented,
    };
}
