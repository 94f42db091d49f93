using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;
using LlmProxy.Testing;

namespace LlmProxy.IntegrationTests.Telemetry;

/// <summary>
/// The gateway as a process with the logging settings the Kubernetes manifest ships (JSON console): what a log
/// pipeline reads from its stdout.
/// </summary>
public sealed partial class JsonConsoleLogTests
{
    private const string TenantKey = "sk-tenant-jsonlogs-0123456789abcdef";
    private const string Prompt = "Remember PROMPT-SECRET-5518 for later";

    [Fact]
    public async Task JsonConsole_ManifestLoggingSettings_EveryLineIsJsonAndTheRequestIdIsOnTheCompletionAndInScopes()
    {
        var logging = ManifestLoggingEnvironment();
        Assert.Equal("json", logging.GetValueOrDefault("Logging__Console__FormatterName"));

        await using var primary = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var fallback = await SimulatorServer.StartAsync(new SimulatorOptions());
        var directory = Directory.CreateTempSubdirectory("llmproxy-jsonlogs-");
        try
        {
            var config = Path.Combine(directory.FullName, "llmproxy.json");
            await File.WriteAllTextAsync(config, new JsonObject
            {
                ["LlmProxy"] = new JsonObject
                {
                    ["Tenants"] = new JsonObject { ["acme"] = new JsonObject { ["Keys"] = new JsonObject { ["ci"] = ApiKeyHasher.Hash(TenantKey) } } },
                    ["Models"] = new JsonObject
                    {
                        ["gpt-json"] = new JsonObject
                        {
                            ["Deployments"] = new JsonObject
                            {
                                ["json-primary"] = new JsonObject { ["Provider"] = "openai", ["BaseUrl"] = primary.OpenAiEndpoint.ToString(), ["Priority"] = 0 },
                                ["json-fallback"] = new JsonObject { ["Provider"] = "openai", ["BaseUrl"] = fallback.OpenAiEndpoint.ToString(), ["Priority"] = 1 },
                            },
                        },
                    },
                    ["Metering"] = new JsonObject { ["DataDirectory"] = Path.Combine(directory.FullName, "data") },
                },
            }.ToJsonString());

            await using var gateway = GatewayProcess.Start(directory.FullName, new Dictionary<string, string?>(logging) { ["LLMPROXY_CONFIG"] = config });

            var listening = await gateway.WaitForLineAsync(l => l.Contains("Now listening on", StringComparison.Ordinal));
            var address = JsonDocument.Parse(listening).RootElement.GetProperty("State").GetProperty("address").GetString()!;

            // The primary fails once: the failover warning (2001) is logged inside the request, before the completion.
            primary.Faults.Set(SimulatorFault.Status(500), count: 1);
            using var http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(60) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TenantKey);
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = new StringContent($$"""{"model":"gpt-json","messages":[{"role":"user","content":"{{Prompt}}"}]}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("x-request-id", "json-req-0001");
            using var response = await http.SendAsync(request);
            var usage = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("usage");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

            var completionLine = await gateway.WaitForLineAsync(l => l.Contains("\"EventId\":3001,", StringComparison.Ordinal));
            var completion = JsonDocument.Parse(completionLine).RootElement;
            var state = completion.GetProperty("State");
            Assert.Equal("Information", completion.GetProperty("LogLevel").GetString());
            Assert.Equal("json-req-0001", state.GetProperty("GatewayRequestId").GetString());
            Assert.Equal("acme", state.GetProperty("Tenant").GetString());
            Assert.Equal("gpt-json", state.GetProperty("Model").GetString());
            Assert.Equal("json-fallback", state.GetProperty("Deployment").GetString());
            Assert.Equal(200, state.GetProperty("Status").GetInt32());
            Assert.Equal(2, state.GetProperty("Attempts").GetInt32());
            Assert.InRange(state.GetProperty("LatencyMs").GetDouble(), 0.001, 60_000);
            Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32(), state.GetProperty("PromptTokens").GetInt32());
            Assert.Equal(usage.GetProperty("completion_tokens").GetInt32(), state.GetProperty("CompletionTokens").GetInt32());
            // With the manifest's IncludeScopes, the other lines of the request carry the id too.
            Assert.Equal(["json-req-0001"], ScopeRequestIds(completion));
            var failover = JsonDocument.Parse(gateway.Lines.First(l => l.Contains("\"EventId\":2001,", StringComparison.Ordinal))).RootElement;
            Assert.Equal(["json-req-0001"], ScopeRequestIds(failover));

            await gateway.StopAsync();
            var lines = gateway.StandardOutputLines.Where(l => l.Length > 0).ToList();
            foreach (var line in lines)
            {
                Assert.True(IsJsonObject(line), $"stdout line is not a JSON object: {line}");
            }
            foreach (var secret in new[] { TenantKey, "PROMPT-SECRET-5518" })
            {
                Assert.DoesNotContain(gateway.Lines, l => l.Contains(secret, StringComparison.Ordinal));
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            directory.Delete(recursive: true);
        }
    }

    /// <summary>The <c>Logging__*</c> variables of config/kubernetes/deployment.yaml, as the container gets them.</summary>
    private static Dictionary<string, string?> ManifestLoggingEnvironment()
    {
        var manifest = File.ReadAllText(RepositoryFiles.PathOf("config/kubernetes/deployment.yaml"));
        var variables = EnvEntry().Matches(manifest).ToDictionary(m => m.Groups["name"].Value, string? (m) => m.Groups["value"].Value.Trim('"'));
        Assert.NotEmpty(variables);
        return variables;
    }

    private static string[] ScopeRequestIds(JsonElement line) =>
        line.TryGetProperty("Scopes", out var scopes)
            ? scopes.EnumerateArray().Where(s => s.ValueKind == JsonValueKind.Object && s.TryGetProperty("GatewayRequestId", out _))
                .Select(s => s.GetProperty("GatewayRequestId").GetString()!).ToArray()
            : [];

    private static bool IsJsonObject(string line)
    {
        try
        {
            return JsonDocument.Parse(line).RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"-\s*\{\s*name:\s*(?<name>Logging__[A-Za-z0-9_]+),\s*value:\s*(?<value>""[^""]*""|[^\s}]+)\s*\}")]
    private static partial Regex EnvEntry();
}
