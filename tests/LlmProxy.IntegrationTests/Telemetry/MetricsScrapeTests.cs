using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using LlmProxy.Testing;

namespace LlmProxy.IntegrationTests.Telemetry;

/// <summary>A real scrape of /metrics after real traffic reports exactly that traffic.</summary>
public sealed partial class MetricsScrapeTests
{
    private const string KeyA = "sk-tenant-metrics-a-0123456789";
    private const string KeyB = "sk-tenant-metrics-b-0123456789";

    [Fact]
    public async Task Scrape_AfterTraffic_CountsMatchWhatWasSent()
    {
        await using var primary = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var fallback = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("tenant-a", KeyA).Tenant("tenant-b", KeyB)
            .OpenAi("model-x", "x-primary", primary.BaseAddress, priority: 0)
            .OpenAi("model-x", "x-fallback", fallback.BaseAddress, priority: 1));
        using var a = gateway.CreateClient(KeyA);
        using var b = gateway.CreateClient(KeyB);

        for (var i = 0; i < 7; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await PostAsync(a, """{"model":"model-x","messages":[{"role":"user","content":"Hello there"}]}""")).StatusCode);
        }
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await PostAsync(b, """{"model":"model-x","stream":true,"messages":[{"role":"user","content":"Hello there"}]}""")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(b, """{"model":"made-up-by-client","messages":[{"role":"user","content":"x"}]}""")).StatusCode);
        primary.Faults.Set(SimulatorFault.Status(500), count: 2);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(a, """{"model":"model-x","messages":[{"role":"user","content":"Hello there"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(a, """{"model":"model-x","messages":[{"role":"user","content":"Hello there"}]}""")).StatusCode);

        using var scrapeClient = gateway.CreateClient();
        using var scrape = await scrapeClient.GetAsync("/metrics");
        var text = await scrape.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);
        Assert.StartsWith("text/plain", scrape.Content.Headers.ContentType!.ToString());
        Assert.Equal(7, Value(text, "llmproxy_requests_total", ("tenant", "tenant-a"), ("model", "model-x"), ("deployment", "x-primary")));
        Assert.Equal(2, Value(text, "llmproxy_requests_total", ("tenant", "tenant-a"), ("deployment", "x-fallback")));
        Assert.Equal(3, Value(text, "llmproxy_requests_total", ("tenant", "tenant-b"), ("model", "model-x"), ("stream", "true")));
        // A client-invented model name is folded into one fixed label.
        Assert.Equal(1, Value(text, "llmproxy_requests_total", ("tenant", "tenant-b"), ("model", "unknown"), ("status_class", "4xx")));
        Assert.DoesNotContain("made-up-by-client", text);
        Assert.Equal(2, Value(text, "llmproxy_failovers_total", ("model", "model-x"), ("from_deployment", "x-primary"), ("reason", "server_error")));
        Assert.Equal(2, Value(text, "llmproxy_upstream_attempts_total", ("deployment", "x-primary"), ("outcome", "server_error")));
        // Every request for "Hello there" costs 5 input tokens: 12 requests served by a provider.
        Assert.Equal(12, Value(text, "gen_ai_client_token_usage_count", ("gen_ai_token_type", "input")));
        Assert.Equal(60, Value(text, "gen_ai_client_token_usage_sum", ("gen_ai_token_type", "input")));
        Assert.Equal(3, Value(text, "gen_ai_server_time_to_first_token_seconds_count", ("tenant", "tenant-b")));
        Assert.Equal(0, Value(text, "llmproxy_deployment_breaker_state", ("deployment", "x-primary")));
        Assert.Contains("dotnet_process_memory_working_set_bytes", text);
        // ASP.NET Core's request duration, with its own (advised) buckets.
        Assert.Equal(12, Value(text, "http_server_request_duration_seconds_count", ("http_route", "/v1/chat/completions"), ("http_response_status_code", "200")));
        AssertInstrumentationSeriesOfTheConfigCheckAreInTheScrape(text);

        if (Environment.GetEnvironmentVariable("LLMPROXY_TEST_SCRAPE_FILE") is { Length: > 0 } file)
        {
            // tests/run.sh validates this real scrape with promtool.
            await File.WriteAllTextAsync(file, text);
        }
    }

    [Fact]
    public async Task Scrape_BreakerOpensThenHalfOpensThenCloses_GaugeFollowsTheDeploymentsBreaker()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var primary = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var fallback = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
                .Tenant("tenant-a", KeyA)
                .OpenAi("model-x", "x-primary", primary.BaseAddress, priority: 0,
                    configure: d => d.Set("Breaker:ConsecutiveFailures", "1").Set("Breaker:BreakDuration", "00:00:30"))
                .OpenAi("model-x", "x-fallback", fallback.BaseAddress, priority: 1),
            services => services.AddSingleton<TimeProvider>(time));
        using var a = gateway.CreateClient(KeyA);
        using var scrapeClient = gateway.CreateClient();
        const string Body = """{"model":"model-x","messages":[{"role":"user","content":"Hello there"}]}""";

        using (var first = await PostAsync(a, Body))
        {
            Assert.Equal("x-primary", first.Headers.GetValues("x-llmproxy-deployment").Single());
        }
        var closed = await scrapeClient.GetStringAsync("/metrics");
        primary.Faults.Set(SimulatorFault.Status(500), count: 1);
        using (var failedOver = await PostAsync(a, Body))
        {
            Assert.Equal(HttpStatusCode.OK, failedOver.StatusCode);
            Assert.Equal("x-fallback", failedOver.Headers.GetValues("x-llmproxy-deployment").Single());
        }
        var open = await scrapeClient.GetStringAsync("/metrics");
        time.Advance(TimeSpan.FromSeconds(30));
        var halfOpen = await scrapeClient.GetStringAsync("/metrics");
        using (var probe = await PostAsync(a, Body))
        {
            Assert.Equal("x-primary", probe.Headers.GetValues("x-llmproxy-deployment").Single());
        }
        var recovered = await scrapeClient.GetStringAsync("/metrics");

        Assert.Equal(0, Value(closed, "llmproxy_deployment_breaker_state", ("deployment", "x-primary")));
        Assert.Equal(2, Value(open, "llmproxy_deployment_breaker_state", ("deployment", "x-primary")));
        Assert.Equal(0, Value(open, "llmproxy_deployment_breaker_state", ("deployment", "x-fallback")));
        Assert.Equal(1, Value(halfOpen, "llmproxy_deployment_breaker_state", ("deployment", "x-primary")));
        Assert.Equal(0, Value(recovered, "llmproxy_deployment_breaker_state", ("deployment", "x-primary")));
    }

    /// <summary>
    /// The ASP.NET Core and runtime series that tests/scripts/check-observability-config.sh lets the dashboard and the
    /// alert rules use (its GATEWAY_METRICS list; the gateway's own are checked by MetricsDocumentationTests) are in
    /// this real scrape, with exactly the labels listed; so are the ones the README's metric table documents.
    /// </summary>
    private static void AssertInstrumentationSeriesOfTheConfigCheckAreInTheScrape(string exposition)
    {
        var script = File.ReadAllText(RepositoryFiles.PathOf("tests/scripts/check-observability-config.sh"));
        var list = Regex.Match(script, @"^GATEWAY_METRICS=\$\(cat <<'EOF'\n(?<body>.*?)^EOF$", RegexOptions.Multiline | RegexOptions.Singleline);
        Assert.True(list.Success, "no GATEWAY_METRICS list in check-observability-config.sh");
        var checkedSeries = 0;
        foreach (var line in list.Groups["body"].Value.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields[0].StartsWith("llmproxy_", StringComparison.Ordinal) || fields[0].StartsWith("gen_ai_", StringComparison.Ordinal))
            {
                continue;
            }
            var samples = SampleLine().Matches(exposition).Where(m => m.Groups["name"].Value == fields[0]).ToList();
            Assert.True(samples.Count > 0, $"{fields[0]} is listed for the dashboard and alerts but not in a real scrape");
            var labels = samples.SelectMany(m => LabelName().Matches(m.Groups["labels"].Value).Select(l => l.Groups[1].Value))
                .ToHashSet(StringComparer.Ordinal);
            Assert.True(labels.SetEquals(fields[2..]), $"{fields[0]}: listed labels [{string.Join(",", fields[2..])}], scraped [{string.Join(",", labels.Order())}]");
            checkedSeries++;
        }
        Assert.True(checkedSeries > 0, "GATEWAY_METRICS lists no instrumentation series");

        // The README's metric table documents the same families: "| `name`, `name` | type | label, label (note) | ... |".
        var readme = File.ReadAllText(RepositoryFiles.PathOf("README.md"));
        var rows = Regex.Matches(readme, @"^\| (?<names>`(?:dotnet|http)_[^|]*) \| (?<type>\w+) \| (?<labels>[^|]*) \|", RegexOptions.Multiline);
        Assert.NotEmpty(rows);
        foreach (Match row in rows)
        {
            var documented = row.Groups["labels"].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(l => Regex.Replace(l, @"\s*\(.*\)$", "")).ToHashSet(StringComparer.Ordinal);
            foreach (Match name in Regex.Matches(row.Groups["names"].Value, "`([a-z_]+)`"))
            {
                var sample = row.Groups["type"].Value == "histogram" ? name.Groups[1].Value + "_count" : name.Groups[1].Value;
                var samples = SampleLine().Matches(exposition).Where(m => m.Groups["name"].Value == sample).ToList();
                Assert.True(samples.Count > 0, $"README documents {name.Groups[1].Value}, which a real scrape does not have");
                var labels = samples.SelectMany(m => LabelName().Matches(m.Groups["labels"].Value).Select(l => l.Groups[1].Value)).ToHashSet(StringComparer.Ordinal);
                Assert.True(labels.SetEquals(documented), $"README: {name.Groups[1].Value} [{string.Join(",", documented)}], scraped [{string.Join(",", labels.Order())}]");
            }
        }
    }

    [Fact]
    public async Task Scrape_ConfiguredModelRefusedByValidation_IsCountedUnderItsOwnName()
    {
        await using var upstream = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("tenant-a", KeyA)
            .OpenAi("model-x", "x-primary", upstream.BaseAddress));
        using var a = gateway.CreateClient(KeyA);

        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(a, """{"model":"model-x","messages":[]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(a, """{"model":"model-x","messages":[{"role":"user","content":"\ud800"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(a, """{"model":"invented-by-client","messages":[]}""")).StatusCode);
        using var scrapeClient = gateway.CreateClient();
        var text = await scrapeClient.GetStringAsync("/metrics");

        // The README reserves "unknown" for names the client invented; a configured model keeps its name even when refused.
        Assert.Equal(2, Value(text, "llmproxy_requests_total", ("tenant", "tenant-a"), ("model", "model-x"), ("status_class", "4xx")));
        Assert.Equal(1, Value(text, "llmproxy_requests_total", ("tenant", "tenant-a"), ("model", "unknown"), ("status_class", "4xx")));
        Assert.DoesNotContain("invented-by-client", text);
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, string body) =>
        http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

    /// <summary>Sums the samples of <paramref name="metric"/> whose labels include all of <paramref name="labels"/>.</summary>
    private static double Value(string exposition, string metric, params (string Name, string Value)[] labels)
    {
        var total = 0.0;
        var found = false;
        foreach (Match match in SampleLine().Matches(exposition))
        {
            if (match.Groups["name"].Value != metric)
            {
                continue;
            }
            var labelText = match.Groups["labels"].Value;
            if (labels.All(l => labelText.Contains($"{l.Name}=\"{l.Value}\"", StringComparison.Ordinal)))
            {
                total += double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
                found = true;
            }
        }
        Assert.True(found, $"no sample of {metric} with {string.Join(",", labels)}");
        return total;
    }

    [GeneratedRegex(@"(?:^|,)([a-zA-Z_][a-zA-Z0-9_]*)=""(?:[^""\\]|\\.)*""")]
    private static partial Regex LabelName();

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)$", RegexOptions.Multiline)]
    private static partial Regex SampleLine();
}
