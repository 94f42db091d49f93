using System.Diagnostics;
using System.Text;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>On shutdown the gateway stops accepting, lets in-flight streams finish within the grace period, then exits.</summary>
public sealed class GracefulShutdownTests
{
    private const string Key = "sk-tenant-shutdown-0123456789";
    private const string StreamBody = """{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"one two three four five six seven eight"}]}""";

    [Fact]
    public async Task Shutdown_InFlightStreamCompletes_NewConnectionsRefused()
    {
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = TimeSpan.FromMilliseconds(100) });
        var gateway = await GatewayHost.StartAsync(new GatewaySettings().Tenant("acme", Key).OpenAi("gpt-test", "slow", slow.BaseAddress)
            .Set("LlmProxy:ShutdownGracePeriod", "00:00:20"));
        using var http = gateway.CreateClient(Key);

        using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(StreamBody, Encoding.UTF8, "application/json"),
        }, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var first = await reader.ReadLineAsync();
        Assert.StartsWith("data: ", first);

        var stopping = gateway.StopAsync();
        await Task.Delay(200); // let Kestrel close its listener
        using var fresh = new HttpClient { BaseAddress = gateway.BaseAddress };
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => fresh.GetAsync("/healthz"));

        var rest = await reader.ReadToEndAsync();
        Assert.EndsWith("data: [DONE]\n\n", rest.Replace("\r\n", "\n"));
        Assert.Contains("eight", rest);
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));
        await gateway.DisposeAsync();
    }

    [Fact]
    public async Task Shutdown_StreamLongerThanGracePeriod_IsCutAtTheGracePeriod()
    {
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = TimeSpan.FromMilliseconds(500) });
        var gateway = await GatewayHost.StartAsync(new GatewaySettings().Tenant("acme", Key).OpenAi("gpt-test", "slow", slow.BaseAddress)
            .Set("LlmProxy:ShutdownGracePeriod", "00:00:01"));
        using var http = gateway.CreateClient(Key);
        using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(StreamBody, Encoding.UTF8, "application/json"),
        }, HttpCompletionOption.ResponseHeadersRead);

        var stopwatch = Stopwatch.StartNew();
        await gateway.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // The stream needs about 6 s; shutdown waited about the 1 s grace period, not for the stream.
        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromMilliseconds(800), TimeSpan.FromSeconds(5));
        await gateway.DisposeAsync();
    }
}
