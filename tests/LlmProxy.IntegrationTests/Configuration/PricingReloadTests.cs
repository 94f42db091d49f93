using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.IntegrationTests.Metering;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Configuration;

/// <summary>
/// The pricing file is watched: an edit changes <c>/v1/pricing</c> and the cost of the requests that follow, without a
/// restart; an invalid edit is rejected and logged, and the previous prices stay.
/// </summary>
[Collection(MeteringCollection.Name)]
public sealed class PricingReloadTests : IAsyncLifetime
{
    private const string Key = "sk-tenant-pricing-reload-0123";
    private SimulatorServer _simulator = null!;
    private MeteredGateway _metered = null!;
    private HttpClient _http = null!;

    private string PricingFile => Path.Combine(_metered.Root, "pricing.json");

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        _metered = await MeteredGateway.StartAsync(new GatewaySettings().Tenant("acme", Key)
            .OpenAi("chat", "sim", _simulator.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel)));
        _http = _metered.Gateway.CreateClient(Key);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _metered.DisposeAsync();
        await _simulator.DisposeAsync();
    }

    private async Task WritePricesAsync(string input, string output) =>
        await File.WriteAllTextAsync(PricingFile, $$"""
            { "currency": "USD", "prices": [
              { "provider": "openai", "model": "{{MeteredGateway.PricedModel}}", "input_per_million": {{input}}, "output_per_million": {{output}}, "effective_date": "2024-01-01" }
            ] }
            """);

    private async Task<decimal> ListedInputPriceAsync()
    {
        using var response = await _http.GetAsync("/v1/pricing");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var data = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("data");
        return data.EnumerateArray().Single(p => p.GetProperty("model").GetString() == MeteredGateway.PricedModel)
            .GetProperty("input_per_million").GetDecimal();
    }

    /// <summary>Sends one request ("alpha beta": 5 prompt and 5 completion tokens at the simulator) and returns its recorded cost.</summary>
    private async Task<decimal?> RecordedCostAsync(string requestId, int recordsSoFar)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"chat","messages":[{"role":"user","content":"alpha beta"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-request-id", requestId);
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var record = (await _metered.WaitForRecordsAsync("acme", recordsSoFar + 1)).Single(r => r.RequestId == requestId);
        Assert.Equal((5, 5), (record.PromptTokens, record.CompletionTokens));
        return record.CostUsd;
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string because)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, because);
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task ValidEdit_NewPricesListedAndCharged_EarlierRecordsKeepTheirCost()
    {
        Assert.Equal(MeteredGateway.PricedInput, await ListedInputPriceAsync());
        var before = await RecordedCostAsync("before", 0);
        Assert.Equal(5 * (MeteredGateway.PricedInput + MeteredGateway.PricedOutput) / 1_000_000m, before);

        await WritePricesAsync("7.00", "30.00");
        await EventuallyAsync(async () => await ListedInputPriceAsync() == 7.00m, "the new prices were not listed within 15 s");

        Assert.Equal(5 * (7.00m + 30.00m) / 1_000_000m, await RecordedCostAsync("after", 1));
        Assert.Equal(before, (await _metered.RecordsAsync("acme")).Single(r => r.RequestId == "before").CostUsd);
        Assert.Contains(_metered.Gateway.Logs.Lines, l => l.Contains("Pricing: 1 price(s) loaded from " + PricingFile, StringComparison.Ordinal));
    }

    [Fact]
    public async Task InvalidEdit_IsRejectedAndLogged_PreviousPricesStay()
    {
        await WritePricesAsync("-1", "30.00");
        await EventuallyAsync(() => Task.FromResult(_metered.Gateway.Logs.Lines.Any(l =>
                l.Contains("Pricing: change to " + PricingFile + " rejected", StringComparison.Ordinal) && l.Contains("'input_per_million' -1 is outside", StringComparison.Ordinal))),
            "the invalid pricing file was not reported within 15 s");

        Assert.Equal(MeteredGateway.PricedInput, await ListedInputPriceAsync());
        Assert.Equal(5 * (MeteredGateway.PricedInput + MeteredGateway.PricedOutput) / 1_000_000m, await RecordedCostAsync("after-invalid", 0));
    }

    [Fact]
    public async Task AdminReload_InvalidPricingFile_Answers400WithTheProblem_ValidOneAnswers200()
    {
        using var admin = _metered.Gateway.CreateClient(MeteredGateway.AdminKey);
        await WritePricesAsync("2.50", "ten");
        using (var rejected = await admin.PostAsync("/admin/config/reload", null))
        {
            Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);
            var error = JsonDocument.Parse(await rejected.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("invalid_configuration", error.GetProperty("code").GetString());
            Assert.Contains(PricingFile, error.GetProperty("message").GetString());
        }
        Assert.Equal(MeteredGateway.PricedInput, await ListedInputPriceAsync());

        await WritePricesAsync("3.25", "12.00");
        using var applied = await admin.PostAsync("/admin/config/reload", null);
        Assert.Equal(HttpStatusCode.OK, applied.StatusCode);
        Assert.Equal(1, JsonDocument.Parse(await applied.Content.ReadAsStringAsync()).RootElement.GetProperty("prices").GetInt32());
        Assert.Equal(3.25m, await ListedInputPriceAsync());
        Assert.Equal((5 * 3.25m + 5 * 12.00m) / 1_000_000m, await RecordedCostAsync("after-reload", 0));
    }
}
