using System.Net;
using System.Net.Sockets;
using System.Text;
using LlmProxy.Simulator;
using Microsoft.AspNetCore.Builder;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

/// <summary>The refuse fault: the simulator stops listening (connections refused) until cleared, then listens again on the same port.</summary>
public sealed class RefuseFaultTests : IAsyncLifetime
{
    private SimulatorServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await SimulatorServer.StartAsync(new SimulatorOptions(), ct: Ct);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Refuse_ConnectIsRefused_ThenClearListensAgainOnTheSamePort()
    {
        _server.Faults.Set(SimulatorFault.Refuse());

        var refused = await Assert.ThrowsAsync<SocketException>(() => ConnectAsync(_server.BaseAddress));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        _server.Faults.Clear();
        using var client = CreateClient(_server);
        using var response = await client.PostChatAsync(UserRequest("hi"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Refuse_OpenKeepAliveConnection_IsDroppedAndTheNextRequestRefused()
    {
        using var client = CreateClient(_server);
        using (var first = await client.PostChatAsync(UserRequest("hi")))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            await first.Content.ReadAsStringAsync(Ct);
        }

        _server.Faults.Set(SimulatorFault.Refuse());

        // The pooled connection is gone; the client's new one is refused, so no request is answered while the fault lasts.
        var failed = await Assert.ThrowsAsync<HttpRequestException>(() => client.PostChatAsync(UserRequest("hi")));
        Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(failed.InnerException).SocketErrorCode);
        Assert.Equal(1, _server.Requests.Count);
    }

    [Fact]
    public void Set_RefuseWithCount_Throws()
    {
        Assert.Throws<ArgumentException>(() => _server.Faults.Set(SimulatorFault.Refuse(), count: 1));
        Assert.Null(_server.Faults.Current);
    }

    [Fact]
    public async Task ControlSurface_RefuseThroughControlUrl_ArmsAndClearsWhileTheControlUrlStaysOpen()
    {
        var controlPort = FreePort();
        await using var app = SimulatorApp.Build(new SimulatorOptions(), ["http://127.0.0.1:0"], controlUrls: [$"http://127.0.0.1:{controlPort}"]);
        await app.StartAsync(Ct);
        var data = new Uri(app.Urls.Single(u => !u.EndsWith($":{controlPort}", StringComparison.Ordinal)));
        using var control = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{controlPort}/") };
        using var http = new HttpClient { BaseAddress = data };

        using var armed = await control.PostAsync("_sim/faults", Json("""{"kind":"refuse"}"""), Ct);
        var whileRefusing = await Assert.ThrowsAsync<SocketException>(() => ConnectAsync(data));
        using var state = await control.GetAsync("_sim/faults", Ct);
        using var cleared = await control.DeleteAsync("_sim/faults", Ct);
        using var after = await http.PostAsync("v1/chat/completions", Json(UserRequest("hi")), Ct);

        Assert.Equal(HttpStatusCode.OK, armed.StatusCode);
        Assert.Equal(SocketError.ConnectionRefused, whileRefusing.SocketErrorCode);
        Assert.Equal("refuse", (await state.ReadJsonAsync()).GetProperty("fault").GetProperty("kind").GetString());
        Assert.Equal(HttpStatusCode.NoContent, cleared.StatusCode);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        await app.StopAsync(Ct);
    }

    [Theory]
    [InlineData("""{"kind":"refuse"}""", "kind")]
    [InlineData("""{"kind":"refuse","count":2}""", "count")]
    public async Task ControlSurface_RefuseOnADataUrlOrWithCount_Returns400(string json, string param)
    {
        using var client = CreateClient(_server);

        // Armed through the listener it closes, it could never be cleared over HTTP.
        using var posted = await client.PostAsync("_sim/faults", Json(json), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, posted.StatusCode);
        Assert.Equal(param, (await posted.ReadJsonAsync()).GetProperty("error").GetProperty("param").GetString());
        Assert.Null(_server.Faults.Current);
    }

    private static async Task ConnectAsync(Uri address)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, address.Port, Ct);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
