using System.ClientModel;
using System.Net;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.OpenAiApi;

/// <summary><c>GET /v1/models/{id}</c> for the models a tenant may use, including vLLM / Hugging Face ids with a '/'.</summary>
public sealed class ModelsTests : IAsyncLifetime
{
    private const string TenantKey = "sk-tenant-models-0123456789";
    private const string RestrictedKey = "sk-tenant-models-restricted-0123";
    private const string SlashModel = "meta-llama/Llama-3.1-8B-Instruct";
    private SimulatorServer _simulator = null!;
    private GatewayHost _gateway = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        _gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .Tenant("restricted", RestrictedKey, "gpt-test")
            .OpenAi("gpt-test", "sim-gpt", _simulator.BaseAddress)
            .OpenAi(SlashModel, "sim-llama", _simulator.BaseAddress));
    }

    public async ValueTask DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _simulator.DisposeAsync();
    }

    [Fact]
    public async Task GetModel_AllowedModel_Returns200ModelObject()
    {
        using var http = _gateway.CreateClient(RestrictedKey);

        using var response = await http.GetAsync("/v1/models/gpt-test");
        var model = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("gpt-test", model.GetProperty("id").GetString());
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.Equal(JsonValueKind.Number, model.GetProperty("created").ValueKind);
        Assert.Equal(JsonValueKind.String, model.GetProperty("owned_by").ValueKind);
    }

    [Fact]
    public async Task GetModel_OfficialSdk_ReturnsTheModel()
    {
        var models = _gateway.CreateOpenAIClient(TenantKey).GetOpenAIModelClient();

        var plain = (await models.GetModelAsync("gpt-test")).Value;
        var slashed = (await models.GetModelAsync(SlashModel)).Value;

        Assert.Equal("gpt-test", plain.Id);
        Assert.Equal(SlashModel, slashed.Id);
    }

    [Theory]
    [InlineData("/v1/models/meta-llama/Llama-3.1-8B-Instruct")]
    [InlineData("/v1/models/meta-llama%2FLlama-3.1-8B-Instruct")]
    [InlineData("/v1/models/meta-llama%2fLlama-3.1-8B-Instruct")]
    public async Task GetModel_IdWithSlash_RawOrEscaped_Returns200(string path)
    {
        using var http = _gateway.CreateClient(TenantKey);

        using var response = await http.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(SlashModel, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString());
    }

    [Fact]
    public async Task GetModel_IdWithSlashNotAllowed_Returns404ModelNotFound()
    {
        using var http = _gateway.CreateClient(RestrictedKey);

        using var response = await http.GetAsync("/v1/models/" + SlashModel);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        var sdk = await Assert.ThrowsAsync<ClientResultException>(() => _gateway.CreateOpenAIClient(RestrictedKey).GetOpenAIModelClient().GetModelAsync(SlashModel));
        Assert.Equal(404, sdk.Status);
    }
}
