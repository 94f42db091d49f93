using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;

namespace LlmProxy.IntegrationTests.Configuration;

/// <summary>
/// Routes, tenants, limits and the cache policy change without a restart, by file edit or <c>POST /admin/config/reload</c>;
/// an invalid change is rejected and logged, and the old configuration keeps serving.
/// </summary>
public sealed class ConfigurationReloadTests : IAsyncLifetime
{
    private const string AdminKey = "sk-admin-reload-0123456789";
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"llmproxy-reload-{Guid.NewGuid():N}.json");
    private SimulatorServer _simulator = null!;
    private GatewayHost _gateway = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        WriteConfig(tenants: ["alpha"], models: ["gpt-a"]);
        _gateway = await GatewayHost.StartAsync(new GatewaySettings().AdminKey(AdminKey), configureConfiguration: c => c.AddJsonFile(_file, optional: false, reloadOnChange: true));
    }

    public async ValueTask DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _simulator.DisposeAsync();
        File.Delete(_file);
    }

    private void WriteConfig(string[] tenants, string[] models, string provider = "openai", int? requestsPerMinute = null, string cacheTtl = "01:00:00")
    {
        var config = new
        {
            LlmProxy = new
            {
                Tenants = tenants.ToDictionary(t => t, t => new { Keys = new Dictionary<string, string> { [t + "-key"] = ApiKeyHasher.Hash("sk-" + t) } }),
                Models = models.ToDictionary(m => m, m => new
                {
                    Deployments = new Dictionary<string, object> { [m + "-sim"] = new { Provider = provider, BaseUrl = new Uri(_simulator.BaseAddress, "v1").ToString() } },
                }),
                RateLimits = new
                {
                    Tenants = requestsPerMinute is { } rpm ? tenants.ToDictionary(t => t, _ => new { RequestsPerMinute = rpm }) : [],
                },
                Cache = new { Ttl = cacheTtl },
            },
        };
        File.WriteAllText(_file, JsonSerializer.Serialize(config));
    }

    /// <summary>Sends requests until one is refused with 429; returns how many were admitted before it.</summary>
    private async Task<int> AdmittedUntilLimitedAsync(string tenant, string model, int atMost = 10)
    {
        for (var admitted = 0; admitted < atMost; admitted++)
        {
            var status = await ChatAsync(tenant, model);
            if (status == HttpStatusCode.TooManyRequests)
            {
                return admitted;
            }
            Assert.Equal(HttpStatusCode.OK, status);
        }
        return atMost;
    }

    private async Task WaitForLogAsync(string because, params string[] fragments)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!_gateway.Logs.Lines.Any(l => fragments.All(f => l.Contains(f, StringComparison.Ordinal))))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no log line with {string.Join(" + ", fragments)} within 15 s: {because}");
            await Task.Delay(100);
        }
    }

    private async Task<HttpStatusCode> ChatAsync(string tenant, string model)
    {
        using var http = _gateway.CreateClient("sk-" + tenant);
        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        return response.StatusCode;
    }

    private async Task<JsonElement> ReloadAsync(HttpStatusCode expected)
    {
        using var admin = _gateway.CreateClient(AdminKey);
        using var response = await admin.PostAsync("/admin/config/reload", null);
        Assert.Equal(expected, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }

    [Fact]
    public async Task ValidChange_AppliesNewTenantsAndRoutes_WithoutRestart()
    {
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync("beta", "gpt-b"));

        WriteConfig(tenants: ["alpha", "beta"], models: ["gpt-a", "gpt-b"]);
        var result = await ReloadAsync(HttpStatusCode.OK);

        Assert.Equal(2, result.GetProperty("models").GetInt32());
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("beta", "gpt-b"));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));
    }

    [Fact]
    public async Task InvalidChange_IsRejectedAndLogged_OldConfigurationKeepsServing()
    {
        WriteConfig(tenants: ["alpha", "beta"], models: ["gpt-a"], provider: "carrier-pigeon");
        var error = (await ReloadAsync(HttpStatusCode.BadRequest)).GetProperty("error");

        Assert.Equal("invalid_configuration", error.GetProperty("code").GetString());
        Assert.Contains("carrier-pigeon", error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync("beta", "gpt-a"));
        Assert.Contains(_gateway.Logs.Lines, l => l.Contains("Configuration change rejected", StringComparison.Ordinal) && l.Contains("carrier-pigeon", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LimitChange_AppliesWithoutRestart()
    {
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));

        WriteConfig(tenants: ["alpha"], models: ["gpt-a"], requestsPerMinute: 1);
        await ReloadAsync(HttpStatusCode.OK);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        var statuses = new List<HttpStatusCode>();
        while (!statuses.Contains(HttpStatusCode.TooManyRequests))
        {
            Assert.True(DateTime.UtcNow < deadline, "the new limit was not applied within 15 s: " + string.Join(",", statuses));
            statuses.Add(await ChatAsync("alpha", "gpt-a"));
        }
        Assert.True(statuses.Count(s => s == HttpStatusCode.OK) <= 1, "at most one request fits a limit of 1 per minute");
    }

    [Fact]
    public async Task FileEdit_IsPickedUpByTheWatcher()
    {
        WriteConfig(tenants: ["alpha", "gamma"], models: ["gpt-a"]);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (await ChatAsync("gamma", "gpt-a") != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the file change was not applied within 15 s");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task InvalidLimitChange_FileEdit_IsRejectedAndLogged_OldLimitStillEnforced()
    {
        WriteConfig(tenants: ["alpha"], models: ["gpt-a"], requestsPerMinute: 2);
        await ReloadAsync(HttpStatusCode.OK);

        // Zero requests per minute is refused (leave the limit out for none); the new tenant in the same edit is valid.
        WriteConfig(tenants: ["alpha", "beta"], models: ["gpt-a"], requestsPerMinute: 0);
        await WaitForLogAsync("the invalid limit was not reported", "Rate limit configuration change rejected", "LlmProxy:RateLimits:Tenants:alpha:RequestsPerMinute must be at least 1");

        Assert.Equal(2, await AdmittedUntilLimitedAsync("alpha", "gpt-a"));
        // Each part is validated on its own: the valid routes and tenants of the edit were applied.
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("beta", "gpt-a"));
    }

    [Fact]
    public async Task AdminReload_InvalidLimits_Answers400WithTheProblem_OldLimitStillEnforced()
    {
        WriteConfig(tenants: ["alpha"], models: ["gpt-a"], requestsPerMinute: 2);
        await ReloadAsync(HttpStatusCode.OK);

        WriteConfig(tenants: ["alpha"], models: ["gpt-a"], requestsPerMinute: -5);
        var error = (await ReloadAsync(HttpStatusCode.BadRequest)).GetProperty("error");

        Assert.Equal("invalid_configuration", error.GetProperty("code").GetString());
        Assert.Contains("LlmProxy:RateLimits:Tenants:alpha:RequestsPerMinute must be at least 1", error.GetProperty("message").GetString());
        Assert.Equal(2, await AdmittedUntilLimitedAsync("alpha", "gpt-a"));
        Assert.Contains(_gateway.Logs.Lines, l => l.Contains("Configuration reload (POST /admin/config/reload): 1 problem(s)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AdminReload_ProblemsInSeveralParts_AreAllReportedAtOnce()
    {
        WriteConfig(tenants: ["alpha"], models: ["gpt-a"], provider: "carrier-pigeon", requestsPerMinute: 0, cacheTtl: "-00:00:01");
        var message = (await ReloadAsync(HttpStatusCode.BadRequest)).GetProperty("error").GetProperty("message").GetString()!;

        Assert.Contains("'carrier-pigeon' is unknown", message);
        Assert.Contains("LlmProxy:RateLimits:Tenants:alpha:RequestsPerMinute must be at least 1", message);
        Assert.Contains("LlmProxy:Cache:Ttl must be positive", message);
        Assert.Contains("3 problem(s)", message);
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));
    }

    [Fact]
    public async Task ValueOfTheWrongType_IsRejectedAndLogged_NotA500()
    {
        WriteConfig(tenants: ["alpha"], models: ["gpt-a"], cacheTtl: "soon");
        // The file watcher's reload fails inside the options system, where nobody would see it.
        await WaitForLogAsync("the unconvertible value was not reported", "Configuration change to LlmProxy:Cache rejected", "'LlmProxy:Cache:Ttl'");

        var error = (await ReloadAsync(HttpStatusCode.BadRequest)).GetProperty("error");
        Assert.Contains("'LlmProxy:Cache:Ttl' to type 'System.TimeSpan'", error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));
    }

    [Fact]
    public async Task FileThatDoesNotParse_IsRejectedAndLogged_OldConfigurationKeepsServing()
    {
        await File.WriteAllTextAsync(_file, """{ "LlmProxy": { "Tenants": """);
        await WaitForLogAsync("the unparsable file was not reported", "Configuration file rejected", Path.GetFileName(_file));

        var error = (await ReloadAsync(HttpStatusCode.BadRequest)).GetProperty("error");
        Assert.Contains("Nothing from the configuration files was applied", error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));

        // Fixed, it applies again.
        WriteConfig(tenants: ["alpha", "delta"], models: ["gpt-a"]);
        await ReloadAsync(HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("delta", "gpt-a"));
    }
}
