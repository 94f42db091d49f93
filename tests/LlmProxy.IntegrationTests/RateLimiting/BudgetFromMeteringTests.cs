using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>End to end with the real composition: the cost metering records is what the spend budget is charged.</summary>
public sealed class BudgetFromMeteringTests
{
    private const string Key = "sk-tenant-budget-e2e-0123456789";

    [Fact]
    public async Task MeteredCosts_TripTheDailyBudget()
    {
        var directory = Directory.CreateTempSubdirectory("llmproxy-budget-e2e-");
        try
        {
            var pricing = Path.Combine(directory.FullName, "pricing.json");
            // "Hello there" costs 5 prompt + 5 completion tokens on the simulator: 5 x 1 + 5 x 3 = 20 USD per million = 0.00002 each.
            await File.WriteAllTextAsync(pricing, """
                { "currency": "USD", "prices": [
                  { "provider": "openai", "model": "budget-model", "input_per_million": 1, "output_per_million": 3, "effective_date": "2024-01-01" } ] }
                """);
            await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
            await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
                .Tenant("thrifty", Key)
                .OpenAi("budget-model", "budget-sim", simulator.BaseAddress)
                .Set("LlmProxy:Metering:PricingFile", pricing)
                .Set("LlmProxy:RateLimits:Tenants:thrifty:DailyBudgetUsd", "0.00005"));
            using var http = gateway.CreateClient(Key);

            var statuses = new List<HttpStatusCode>();
            JsonElement? rejection = null;
            for (var i = 0; i < 5; i++)
            {
                using var response = await http.PostAsync("/v1/chat/completions",
                    new StringContent("""{"model":"budget-model","messages":[{"role":"user","content":"Hello there"}]}""", Encoding.UTF8, "application/json"));
                statuses.Add(response.StatusCode);
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    rejection ??= JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
                }
            }

            // Spend after each request: 0.00002, 0.00004, 0.00006. The third is admitted (spend below budget), the rest refused.
            Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
            Assert.Equal("budget_exceeded", rejection!.Value.GetProperty("code").GetString());
            Assert.Equal(3, simulator.Requests.Count);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
