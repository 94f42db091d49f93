using System.Net;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Pipeline;
using LlmProxy.RateLimiting;
using LlmProxy.Simulator;
using static LlmProxy.IntegrationTests.RateLimiting.RateLimitTesting;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>In-flight caps against slow upstreams: held for the whole request, streams included, freed on completion or disconnect.</summary>
public sealed class ConcurrencyLimitTests
{
    private static async Task<(GatewayHost Gateway, AdmittedProbe Admitted, CompletionSignal Completed)> StartAsync(SimulatorServer simulator, int concurrentRequests,
        Func<GatewaySettings, GatewaySettings>? configure = null)
    {
        var admitted = new AdmittedProbe();
        var completed = new CompletionSignal();
        var settings = Settings(simulator).Limit("Tenants:acme:ConcurrentRequests", concurrentRequests);
        var gateway = await GatewayHost.StartAsync(configure?.Invoke(settings) ?? settings, services =>
        {
            services.AddLlmProxyRateLimiting();
            services.AddSingleton<IChatMiddleware>(admitted);
            services.AddSingleton<IChatRequestCompletionListener>(completed);
        });
        return (gateway, admitted, completed);
    }

    [Theory]
    [InlineData(RateLimitStores.Local)]
    [InlineData(RateLimitStores.Redis)]
    public async Task SlowUpstream_ThirdConcurrentRequest_IsRefusedUntilOneFinishes(string store)
    {
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions { Latency = TimeSpan.FromSeconds(2) });
        var (gateway, admitted, completed) = await StartAsync(simulator, 2,
            s => store == RateLimitStores.Redis ? s.RedisStore(RedisTestServer.SharedConfiguration(), RedisTestServer.NewKeyPrefix()) : s);
        await using var _ = gateway;
        using var http = gateway.CreateClient(AcmeKey);

        var slow = new[] { SendAsync(http), SendAsync(http) };
        await admitted.NextAsync();
        await admitted.NextAsync();

        using (var refused = await SendAsync(http))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            var error = await refused.ErrorAsync();
            Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
            Assert.Equal("Too many concurrent requests for tenant 'acme': Limit 2, In flight 2. Please try again when one of them has finished.",
                error.GetProperty("message").GetString());
            Assert.Equal("1", refused.Header("Retry-After"));
        }
        foreach (var response in await Task.WhenAll(slow))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }
        for (var i = 0; i < 3; i++)
        {
            await completed.NextAsync();
        }

        using var after = await SendAsync(http);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task Stream_HoldsItsSlotUntilTheLastChunk()
    {
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = TimeSpan.FromMilliseconds(250) });
        var (gateway, _, completed) = await StartAsync(simulator, 1);
        await using var __ = gateway;
        using var http = gateway.CreateClient(AcmeKey);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-test","messages":[{"role":"user","content":"stream me a few words"}],"stream":true}""",
                System.Text.Encoding.UTF8, "application/json"),
        };

        using (var stream = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            using (var whileStreaming = await SendAsync(http))
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, whileStreaming.StatusCode);
            }
            Assert.Contains("data: [DONE]", await stream.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        await completed.NextAsync(); // the refused one
        await completed.NextAsync(); // the stream

        using var after = await SendAsync(http);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task ClientDisconnects_SlotIsFreed()
    {
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        simulator.Faults.Set(SimulatorFault.Hang(), count: 1);
        var (gateway, admitted, completed) = await StartAsync(simulator, 1);
        await using var _ = gateway;
        using var http = gateway.CreateClient(AcmeKey);
        using var disconnect = new CancellationTokenSource();

        var hanging = SendAsync(http, cancellationToken: disconnect.Token);
        await admitted.NextAsync();
        // Disconnect only once the request is waiting on the upstream (the simulator records it on arrival).
        for (var waited = 0; simulator.Requests.Count == 0 && waited < 3000; waited++)
        {
            await Task.Delay(10);
        }
        Assert.Equal(1, simulator.Requests.Count);
        disconnect.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => hanging);
        var aborted = await completed.NextAsync();
        Assert.Equal("client_disconnected", aborted.Chat!.ErrorCode);

        using var after = await SendAsync(http);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }
}
