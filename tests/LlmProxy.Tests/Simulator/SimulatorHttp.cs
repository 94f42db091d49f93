using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmProxy.Simulator;
using Xunit;

namespace LlmProxy.Tests.Simulator;

/// <summary>Plain-HTTP helpers for talking to a simulator the way any OpenAI client does on the wire.</summary>
internal static class SimulatorHttp
{
    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static HttpClient CreateClient(SimulatorServer server, string? apiKey = "sk-test", TimeSpan? timeout = null)
    {
        var client = new HttpClient { BaseAddress = server.BaseAddress, Timeout = timeout ?? TimeSpan.FromSeconds(30) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return client;
    }

    /// <summary>Posts a chat completion and returns once the headers arrive, so streams can be read as they come.</summary>
    public static Task<HttpResponseMessage> PostChatAsync(this HttpClient client, string json) => client.PostChatUntilAsync(json, Ct);

    public static Task<HttpResponseMessage> PostChatUntilAsync(this HttpClient client, string json, CancellationToken cancellationToken) =>
        client.SendAsync(
            new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(json, Encoding.UTF8, "application/json") },
            HttpCompletionOption.ResponseHeadersRead,
            cancellationToken);

    public static async Task<JsonElement> ReadJsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    /// <summary>Reads a server-sent event stream to its end and returns each event's data field, in order.</summary>
    public static async Task<List<string>> ReadEventsAsync(this HttpResponseMessage response, List<string>? received = null)
    {
        var events = received ?? [];
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var data = new StringBuilder();
        while (await reader.ReadLineAsync(Ct) is { } line)
        {
            if (line.Length == 0)
            {
                if (data.Length > 0)
                {
                    events.Add(data.ToString());
                    data.Clear();
                }

                continue;
            }

            Assert.StartsWith("data: ", line);
            data.Append(line["data: ".Length..]);
        }

        Assert.Equal(0, data.Length);
        return events;
    }

    public static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    /// <summary>A minimal valid request body with one user message.</summary>
    public static string UserRequest(string text, string model = "gpt-4o-mini", string extra = "") =>
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":{{JsonSerializer.Serialize(text)}}}]{{extra}}}""";

    public const string WeatherTools = """
        "tools":[
          {"type":"function","function":{"name":"get_weather","description":"Weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer"}},"required":["city"]}}},
          {"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"timezone":{"type":"string"},"precise":{"type":"boolean"}}}}}
        ]
        """;
}
