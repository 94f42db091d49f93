using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.IntegrationTests.Metering;
using LlmProxy.Metering;
using LlmProxy.Simulator;
using Microsoft.Data.Sqlite;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>
/// On shutdown the gateway stops accepting, lets in-flight streams finish within the grace period, flushes the usage
/// ledger, then exits.
/// </summary>
[Collection(MeteringCollection.Name)]
public sealed class GracefulShutdownTests
{
    private const string Key = "sk-tenant-shutdown-0123456789";
    private const string StreamBody = """{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three four five six seven eight"}]}""";

    private static HttpRequestMessage Post(string requestId, string json)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.Add("x-request-id", requestId);
        return request;
    }

    private static Task<MeteredGateway> StartAsync(Uri upstream, string gracePeriod, TimeSpan? storeLatency = null) =>
        MeteredGateway.StartAsync(new GatewaySettings().Tenant("acme", Key)
            .OpenAi("gpt-test", "slow", upstream, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel))
            .Set("LlmProxy:ShutdownGracePeriod", gracePeriod),
            services: storeLatency is not { } latency ? null : s => s.AddSingleton<IUsageStore>(sp =>
            {
                var options = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeteringOptions>>().Value;
                return new LatentUsageStore(new SqliteUsageStore(Path.Combine(options.DataDirectory, SqliteUsageStore.FileName)), latency);
            }));

    /// <summary>The ledger as the next process (or an operator with sqlite3) sees it: read from the file, not through the gateway.</summary>
    private static List<(string RequestId, bool Streamed, int Prompt, int Completion, decimal? Cost, bool Disconnected)> ReadLedger(string dataDirectory)
    {
        var rows = new List<(string, bool, int, int, decimal?, bool)>();
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(dataDirectory, SqliteUsageStore.FileName),
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = false,
        }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT request_id, streamed, prompt_tokens, completion_tokens, cost_usd, client_disconnected FROM usage_records ORDER BY ts";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add((reader.GetString(0), reader.GetInt64(1) != 0, reader.GetInt32(2), reader.GetInt32(3),
                reader.IsDBNull(4) ? null : decimal.Parse(reader.GetString(4), CultureInfo.InvariantCulture), reader.GetInt64(5) != 0));
        }
        return rows;
    }

    [Fact]
    public async Task Shutdown_InFlightStreamCompletes_NewConnectionsRefused_AndEveryRecordIsInTheLedger()
    {
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = TimeSpan.FromMilliseconds(100) });
        var metered = await StartAsync(slow.BaseAddress, "00:00:20");
        try
        {
            var gateway = metered.Gateway;
            using var http = gateway.CreateClient(Key);
            for (var i = 0; i < 3; i++)
            {
                using var before = await http.SendAsync(Post($"before-{i}", """{"model":"gpt-test","messages":[{"role":"user","content":"alpha beta"}]}"""));
                Assert.True(before.IsSuccessStatusCode);
            }

            using var response = await http.SendAsync(Post("in-flight", StreamBody), HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            var first = await reader.ReadLineAsync();
            Assert.StartsWith("data: ", first);

            var stopping = gateway.StopAsync();
            await Task.Delay(200); // let Kestrel close its listener
            using var fresh = new HttpClient { BaseAddress = gateway.BaseAddress };
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => fresh.GetAsync("/healthz"));

            var rest = (await reader.ReadToEndAsync()).Replace("\r\n", "\n");
            Assert.EndsWith("data: [DONE]\n\n", rest);
            Assert.Contains("eight", rest);
            var usage = rest.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal))
                .Select(l => JsonDocument.Parse(l["data: ".Length..]).RootElement)
                .Last(e => e.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object).GetProperty("usage");
            await stopping.WaitAsync(TimeSpan.FromSeconds(20));

            // Stopped: the ledger file holds every record, the drained stream's included, with the tokens the client was
            // told; nothing was left in the spill file for the next start.
            var ledger = ReadLedger(metered.DataDirectory);
            Assert.Equal(["before-0", "before-1", "before-2", "in-flight"], ledger.Select(r => r.RequestId).Order(StringComparer.Ordinal));
            var streamed = ledger.Single(r => r.RequestId == "in-flight");
            // The simulator counts words + 3 per message: 8 + 3 prompt; "Simulated reply to: one ... eight" is 11 words.
            Assert.Equal((11, 11), (streamed.Prompt, streamed.Completion));
            Assert.Equal((usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32()), (streamed.Prompt, streamed.Completion));
            Assert.True(streamed.Streamed);
            Assert.False(streamed.Disconnected);
            Assert.Equal((11 * MeteredGateway.PricedInput + 11 * MeteredGateway.PricedOutput) / 1_000_000m, streamed.Cost);
            Assert.All(ledger.Where(r => r.RequestId != "in-flight"), r => Assert.Equal((5, 5), (r.Prompt, r.Completion)));
            Assert.False(File.Exists(Path.Combine(metered.DataDirectory, UsageSpillFile.FileName)), "records were spilled instead of written to the ledger");
        }
        finally
        {
            await metered.DisposeAsync();
        }
    }

    [Fact]
    public async Task Shutdown_StreamLongerThanGracePeriod_IsCutAtTheGracePeriod_AndStillRecorded()
    {
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = TimeSpan.FromMilliseconds(500) });
        // Each write takes 300 ms, as a store across the network does, so the cut stream's record is still being written
        // when the ledger is told to stop, and it is the shutdown flush that has to write it.
        var metered = await StartAsync(slow.BaseAddress, "00:00:01", storeLatency: TimeSpan.FromMilliseconds(300));
        try
        {
            using var http = metered.Gateway.CreateClient(Key);
            using (var before = await http.SendAsync(Post("before", """{"model":"gpt-test","messages":[{"role":"user","content":"alpha beta"}]}""")))
            {
                Assert.True(before.IsSuccessStatusCode);
            }
            using var response = await http.SendAsync(Post("cut", StreamBody), HttpCompletionOption.ResponseHeadersRead);

            var stopwatch = Stopwatch.StartNew();
            await metered.Gateway.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));

            // The stream needs about 6 s; shutdown waited about the 1 s grace period, not for the stream, then flushed.
            Assert.InRange(stopwatch.Elapsed, TimeSpan.FromMilliseconds(800), TimeSpan.FromSeconds(5));
            // The grace period is over when the stream is cut; the ledger still has its own time to write the record.
            var ledger = ReadLedger(metered.DataDirectory);
            Assert.Contains(ledger, r => r.RequestId == "before");
            var cut = Assert.Single(ledger, r => r.RequestId == "cut");
            Assert.True(cut.Completion < 11, "the cut stream is charged for what was sent, not the whole reply");
            Assert.False(File.Exists(Path.Combine(metered.DataDirectory, UsageSpillFile.FileName)), "the cut stream's record was spilled instead of written");
        }
        finally
        {
            await metered.DisposeAsync();
        }
    }

    /// <summary>The real SQLite store, with the latency of a store across the network on every write.</summary>
    private sealed class LatentUsageStore(SqliteUsageStore inner, TimeSpan latency) : IUsageStore
    {
        public string Name => inner.Name;

        public Task InitializeAsync(CancellationToken cancellationToken) => inner.InitializeAsync(cancellationToken);

        public async Task WriteAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken)
        {
            await Task.Delay(latency, cancellationToken);
            await inner.WriteAsync(records, cancellationToken);
        }

        public IAsyncEnumerable<UsageRecord> QueryAsync(UsageQuery query, CancellationToken cancellationToken) => inner.QueryAsync(query, cancellationToken);

        public Task CheckHealthAsync(CancellationToken cancellationToken) => inner.CheckHealthAsync(cancellationToken);
    }
}
