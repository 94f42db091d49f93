using System.Net;
using System.Text;
using LlmProxy.Simulator;
using LlmProxy.Simulator.Hosting;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class BedrockOptionsTests
{
    [Fact]
    public void Defaults_OneSimulatorIdentityAndSignaturesRequired()
    {
        var options = new SimulatorOptions();

        Assert.Equal(new Dictionary<string, string> { ["AKIDSIMULATOR"] = "simulator-secret" }, options.BedrockCredentials);
        Assert.True(options.BedrockRequireSignature);
    }

    [Fact]
    public void CommandLine_BedrockOptions_ReplaceTheCredentialsAndTurnSignaturesOff()
    {
        var commandLine = CommandLine.Parse(["--bedrock-credentials", "AKIDONE:secret1, AKIDTWO:with:colon", "--bedrock-unsigned"]);

        Assert.Equal(new Dictionary<string, string> { ["AKIDONE"] = "secret1", ["AKIDTWO"] = "with:colon" }, commandLine.Options.BedrockCredentials);
        Assert.False(commandLine.Options.BedrockRequireSignature);
    }

    [Theory]
    [InlineData("AKIDONLY")]
    [InlineData(":secret")]
    [InlineData("AKID:")]
    public void CommandLine_BedrockCredentialWithoutBothParts_FormatException(string pair) =>
        Assert.Throws<FormatException>(() => CommandLine.Parse(["--bedrock-credentials", pair]));

    [Fact]
    public void MidStreamError_StatusOutOfRange_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => SimulatorFault.MidStreamError(0, statusCode: 200));

    [Fact]
    public async Task FaultControl_MidStreamErrorWithStatus_RoundTrips()
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions(), ct: Ct);
        using var client = CreateClient(server);

        using var posted = await client.PostAsync(
            "_sim/faults",
            new StringContent("""{"kind":"midStreamError","afterChunks":1,"statusCode":429,"count":1}""", Encoding.UTF8, "application/json"),
            Ct);

        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        Assert.Equal(SimulatorFault.MidStreamError(1, 429), server.Faults.Current);
        Assert.Equal(
            """{"fault":{"kind":"midStreamError","statusCode":429,"retryAfterSeconds":null,"afterChunks":1},"remaining":1}""",
            await posted.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task OpenAiStream_MidStreamErrorWithStatus_SendsThatStatusesErrorBody()
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions(), ct: Ct);
        using var client = CreateClient(server);
        server.Faults.Set(SimulatorFault.MidStreamError(1, 429), count: 1);

        using var response = await client.PostChatAsync(UserRequest("hi", extra: ",\"stream\":true"));

        var events = await response.ReadEventsAsync();
        Assert.Equal(2, events.Count);
        Assert.Equal("rate_limit_exceeded", Parse(events[1]).GetProperty("error").GetProperty("code").GetString());
    }
}
