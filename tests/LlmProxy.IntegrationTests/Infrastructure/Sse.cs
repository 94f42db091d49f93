using System.Text.Json;

namespace LlmProxy.IntegrationTests.Infrastructure;

/// <summary>Reads a raw server-sent-events response, for assertions on the exact events a client receives.</summary>
internal static class Sse
{
    public static async Task<List<string>> ReadDataAsync(HttpResponseMessage response)
    {
        var events = new List<string>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? line;
        while ((line = await reader.ReadLineAsync()) is not null)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add(line["data: ".Length..]);
            }
        }
        return events;
    }

    public static string Content(IEnumerable<string> events) => string.Concat(events
        .Where(e => e != "[DONE]")
        .Select(e => JsonDocument.Parse(e).RootElement)
        .Where(e => e.TryGetProperty("choices", out var c) && c.GetArrayLength() > 0)
        .Select(e => e.GetProperty("choices")[0].GetProperty("delta"))
        .Select(d => d.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : ""));
}
