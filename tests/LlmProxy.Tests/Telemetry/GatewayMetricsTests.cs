using System.Diagnostics.Metrics;
using LlmProxy.Metering;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using LlmProxy.RateLimiting;
using LlmProxy.Telemetry;
using LlmProxy.Tests.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace LlmProxy.Tests.Telemetry;

public sealed class GatewayMetricsTests
{
    private const string RequestLabels = "deployment=\"d1\",model=\"gpt-4o\",provider=\"openai\",status_class=\"2xx\",stream=\"false\",tenant=\"acme\"";
    private const string GenAiLabels = "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o\"";

    [Fact]
    public void RecordRequestCompleted_ServedNonStreamedRequest_RecordsCountDurationAndTokenUsage()
    {
        using var services = new TelemetryServices();
        var chat = TestChats.Chat("acme", TestChats.Deployment("d1", "gpt-4o"), stream: false);
        chat.ServedBy = chat.Route.Deployments[0];
        chat.Attempts = 1;
        chat.Usage = new TokenUsage(PromptTokens: 10, CompletionTokens: 200, TotalTokens: 210);

        services.Metrics.RecordRequestCompleted(chat, StatusCodes.Status200OK);
        var scrape = services.Scrape();

        Assert.Equal(1, scrape.Value($"llmproxy_requests_total{{{RequestLabels}}}"));
        var durationLabels = "model=\"gpt-4o\",provider=\"openai\",status_class=\"2xx\",stream=\"false\",tenant=\"acme\"";
        Assert.Equal(1, scrape.Value($"llmproxy_request_duration_seconds_count{{{durationLabels}}}"));
        Assert.InRange(scrape.Value($"llmproxy_request_duration_seconds_sum{{{durationLabels}}}"), 0, 60);

        Assert.Equal(10, scrape.Value($"gen_ai_client_token_usage_sum{{{GenAiLabels},gen_ai_token_type=\"input\",tenant=\"acme\"}}"));
        Assert.Equal(200, scrape.Value($"gen_ai_client_token_usage_sum{{{GenAiLabels},gen_ai_token_type=\"output\",tenant=\"acme\"}}"));
        // Semantic-convention buckets: 10 input tokens fall in le=16, 200 output tokens in le=256.
        Assert.Equal(0, scrape.Value($"gen_ai_client_token_usage_bucket{{{GenAiLabels},gen_ai_token_type=\"input\",tenant=\"acme\",le=\"4\"}}"));
        Assert.Equal(1, scrape.Value($"gen_ai_client_token_usage_bucket{{{GenAiLabels},gen_ai_token_type=\"input\",tenant=\"acme\",le=\"16\"}}"));
        Assert.Equal(1, scrape.Value($"gen_ai_client_token_usage_bucket{{{GenAiLabels},gen_ai_token_type=\"output\",tenant=\"acme\",le=\"256\"}}"));
        Assert.Empty(scrape.SeriesOf("gen_ai_server_time_to_first_token_seconds_count"));
    }

    [Fact]
    public void RecordRequestCompleted_StreamServedByBedrock_RecordsTimeToFirstTokenWithSemconvProviderName()
    {
        using var services = new TelemetryServices();
        var chat = TestChats.Chat("acme", TestChats.Deployment("br1", "claude", provider: "bedrock", genAiProvider: "aws.bedrock"), stream: true);
        chat.ServedBy = chat.Route.Deployments[0];
        chat.TimeToFirstToken = TimeSpan.FromMilliseconds(250);
        chat.Usage = new TokenUsage(5, 7, 12);

        services.Metrics.RecordRequestCompleted(chat, StatusCodes.Status200OK);
        var scrape = services.Scrape();

        Assert.Equal(1, scrape.Value("llmproxy_requests_total{deployment=\"br1\",model=\"claude\",provider=\"bedrock\",status_class=\"2xx\",stream=\"true\",tenant=\"acme\"}"));
        var ttft = "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"aws.bedrock\",gen_ai_request_model=\"claude\",tenant=\"acme\"";
        Assert.Equal(1, scrape.Value($"gen_ai_server_time_to_first_token_seconds_count{{{ttft}}}"));
        Assert.Equal(0.25, scrape.Value($"gen_ai_server_time_to_first_token_seconds_sum{{{ttft}}}"));
        Assert.Equal(0, scrape.Value($"gen_ai_server_time_to_first_token_seconds_bucket{{{ttft},le=\"0.1\"}}"));
        Assert.Equal(1, scrape.Value($"gen_ai_server_time_to_first_token_seconds_bucket{{{ttft},le=\"0.25\"}}"));
    }

    [Fact]
    public void RecordRequestCompleted_EveryDeploymentFailed_RecordsNoneAsProviderAndNoTokenUsage()
    {
        using var services = new TelemetryServices();
        var chat = TestChats.Chat("acme", TestChats.Deployment("d1", "gpt-4o"), stream: false);
        chat.Attempts = 2;
        chat.ErrorCode = "upstream_unavailable";

        services.Metrics.RecordRequestCompleted(chat, StatusCodes.Status503ServiceUnavailable);
        var scrape = services.Scrape();

        Assert.Equal(1, scrape.Value("llmproxy_requests_total{deployment=\"none\",model=\"gpt-4o\",provider=\"none\",status_class=\"5xx\",stream=\"false\",tenant=\"acme\"}"));
        Assert.DoesNotContain("gen_ai_client_token_usage", scrape.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void RecordRequestCompleted_ClientGoneBeforeResponse_RecordsStatus499()
    {
        using var services = new TelemetryServices();
        var http = new DefaultHttpContext { RequestAborted = new CancellationToken(canceled: true) };
        var chat = TestChats.Chat("acme", TestChats.Deployment("d1", "gpt-4o"), stream: true, http);
        chat.ErrorCode = "client_disconnected";

        services.Metrics.RecordRequestCompleted(chat, http.Response.StatusCode);
        var scrape = services.Scrape();

        Assert.Equal(1, scrape.Value("llmproxy_requests_total{deployment=\"none\",model=\"gpt-4o\",provider=\"none\",status_class=\"4xx\",stream=\"true\",tenant=\"acme\"}"));
    }

    [Fact]
    public void RecordRequestCompleted_CacheHit_RecordsCacheAsProviderAndNoGenAiMetrics()
    {
        using var services = new TelemetryServices();
        var chat = TestChats.Chat("acme", TestChats.Deployment("d1", "gpt-4o"), stream: false);
        chat.CacheHit = true;
        chat.Usage = new TokenUsage(10, 20, 30);

        services.Metrics.RecordRequestCompleted(chat, StatusCodes.Status200OK);
        var scrape = services.Scrape();

        Assert.Equal(1, scrape.Value("llmproxy_requests_total{deployment=\"cache\",model=\"gpt-4o\",provider=\"cache\",status_class=\"2xx\",stream=\"false\",tenant=\"acme\"}"));
        Assert.DoesNotContain("gen_ai_", scrape.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void RecordRequestCompleted_RejectedBeforeRouting_RecordsUnknownModel()
    {
        using var services = new TelemetryServices();
        var outcome = new RequestOutcome("acme", MetricLabels.Model("gpt-9-does-not-exist", new Dictionary<string, object> { ["gpt-4o"] = new() }),
            Provider: null, Deployment: null, StatusCodes.Status404NotFound, Stream: false, TimeSpan.FromMilliseconds(3));

        services.Metrics.RecordRequestCompleted(outcome);
        var scrape = services.Scrape();

        Assert.Equal(1, scrape.Value("llmproxy_requests_total{deployment=\"none\",model=\"unknown\",provider=\"none\",status_class=\"4xx\",stream=\"false\",tenant=\"acme\"}"));
    }

    [Fact]
    public void RecordUpstreamAttempt_SuccessAndFailure_RecordAttemptsDurationsAndGenAiErrorType()
    {
        using var services = new TelemetryServices();
        var deployment = TestChats.Deployment("d1", "gpt-4o");
        var failure = UpstreamFailure.FromStatus(503, "d1", null, null);

        services.Metrics.RecordUpstreamAttempt(deployment, UpstreamOutcomes.FromFailure(failure), TimeSpan.FromSeconds(0.2));
        services.Metrics.RecordUpstreamAttempt(deployment, UpstreamOutcomes.FromFailure(null), TimeSpan.FromSeconds(1.5));
        services.Metrics.RecordUpstreamAttempt(deployment, UpstreamOutcomes.Success, TimeSpan.FromSeconds(0.5));
        var scrape = services.Scrape();

        Assert.Equal(1, scrape.Value("llmproxy_upstream_attempts_total{deployment=\"d1\",outcome=\"server_error\"}"));
        Assert.Equal(2, scrape.Value("llmproxy_upstream_attempts_total{deployment=\"d1\",outcome=\"success\"}"));
        Assert.Equal(2.0, scrape.Value("llmproxy_upstream_duration_seconds_sum{deployment=\"d1\",outcome=\"success\"}"));
        Assert.Equal(2, scrape.Value($"gen_ai_client_operation_duration_seconds_count{{{GenAiLabels}}}"));
        Assert.Equal(1, scrape.Value($"gen_ai_client_operation_duration_seconds_count{{error_type=\"server_error\",{GenAiLabels}}}"));
        // Semantic-convention buckets for the operation duration: 0.2 s is above 0.16 and at most 0.32.
        Assert.Equal(0, scrape.Value($"gen_ai_client_operation_duration_seconds_bucket{{error_type=\"server_error\",{GenAiLabels},le=\"0.16\"}}"));
        Assert.Equal(1, scrape.Value($"gen_ai_client_operation_duration_seconds_bucket{{error_type=\"server_error\",{GenAiLabels},le=\"0.32\"}}"));
    }

    [Fact]
    public void RecordFailover_Called_CountsByModelFromDeploymentAndReason()
    {
        using var services = new TelemetryServices();

        services.Metrics.RecordFailover("gpt-4o", "d1", UpstreamOutcomes.RateLimited);
        services.Metrics.RecordFailover("gpt-4o", "d1", UpstreamOutcomes.RateLimited);

        Assert.Equal(2, services.Scrape().Value("llmproxy_failovers_total{from_deployment=\"d1\",model=\"gpt-4o\",reason=\"rate_limited\"}"));
    }

    [Fact]
    public void BreakerState_SourceSetThenRemoved_IsReadAtEachScrape()
    {
        using var services = new TelemetryServices();
        var states = new List<(string, int)> { ("d1", BreakerStates.Closed), ("d2", BreakerStates.Open) };

        var none = services.Scrape();
        services.Metrics.SetBreakerStateSource(() => states);
        var first = services.Scrape();
        states[1] = ("d2", BreakerStates.HalfOpen);
        var second = services.Scrape();
        services.Metrics.SetBreakerStateSource(null);
        var removed = services.Scrape();

        Assert.Empty(none.SeriesOf("llmproxy_deployment_breaker_state"));
        Assert.Equal(0, first.Value("llmproxy_deployment_breaker_state{deployment=\"d1\"}"));
        Assert.Equal(2, first.Value("llmproxy_deployment_breaker_state{deployment=\"d2\"}"));
        Assert.Equal(1, second.Value("llmproxy_deployment_breaker_state{deployment=\"d2\"}"));
        Assert.Empty(removed.SeriesOf("llmproxy_deployment_breaker_state"));
    }

    [Fact]
    public void TrackInFlight_ScopesOpenAndDisposed_GaugesRiseAndFall()
    {
        using var services = new TelemetryServices();

        double during, streamsDuring;
        using (services.Metrics.TrackRequestInFlight())
        using (services.Metrics.TrackRequestInFlight())
        using (services.Metrics.TrackStreamInFlight())
        {
            var scrape = services.Scrape();
            during = scrape.Value("llmproxy_requests_in_flight");
            streamsDuring = scrape.Value("llmproxy_streams_in_flight");
        }
        var after = services.Scrape();

        Assert.Equal(2, during);
        Assert.Equal(1, streamsDuring);
        Assert.Equal(0, after.Value("llmproxy_requests_in_flight"));
        Assert.Equal(0, after.Value("llmproxy_streams_in_flight"));
        Assert.Equal("gauge", after.Types["llmproxy_requests_in_flight"]);
    }

    [Fact]
    public void ReservedRecordingMethods_Called_ExposeTheirMetrics()
    {
        using var services = new TelemetryServices();
        var metrics = services.Metrics;

        metrics.RecordCacheRequest("acme", "gpt-4o", CacheResult.Hit);
        metrics.RecordCacheRequest("acme", "gpt-4o", CacheResult.Miss);
        metrics.RecordCacheRequest("acme", "gpt-4o", CacheResult.Bypass);
        metrics.RecordCacheStoreError("redis", "get");
        metrics.RecordCacheStoreDuration("redis", "get", TimeSpan.FromMilliseconds(2));
        metrics.RecordCost("acme", "gpt-4o", "openai", 0.0125m);
        metrics.RecordCost("acme", "gpt-4o", "openai", 0m);
        metrics.RecordRateLimitRejection("acme", "tokens");
        metrics.SetUsageLedgerQueueDepthSource(() => 42);
        metrics.RecordUsageLedgerSpilled(3);
        metrics.RecordUsageLedgerWriteError("dynamodb");
        var scrape = services.Scrape();

        Assert.Equal(1, scrape.Value("llmproxy_cache_requests_total{model=\"gpt-4o\",result=\"hit\",tenant=\"acme\"}"));
        Assert.Equal(1, scrape.Value("llmproxy_cache_requests_total{model=\"gpt-4o\",result=\"miss\",tenant=\"acme\"}"));
        Assert.Equal(1, scrape.Value("llmproxy_cache_requests_total{model=\"gpt-4o\",result=\"bypass\",tenant=\"acme\"}"));
        Assert.Equal(1, scrape.Value("llmproxy_cache_store_errors_total{operation=\"get\",store=\"redis\"}"));
        Assert.Equal(0.002, scrape.Value("llmproxy_cache_store_duration_seconds_sum{operation=\"get\",store=\"redis\"}"));
        Assert.Equal(0.0125, scrape.Value("llmproxy_cost_usd_total{model=\"gpt-4o\",provider=\"openai\",tenant=\"acme\"}"));
        Assert.Equal(1, scrape.Value("llmproxy_ratelimit_rejections_total{limit=\"tokens\",tenant=\"acme\"}"));
        Assert.Equal(42, scrape.Value("llmproxy_usage_ledger_queue_depth"));
        Assert.Equal(3, scrape.Value("llmproxy_usage_ledger_spilled_total"));
        Assert.Equal(1, scrape.Value("llmproxy_usage_ledger_write_errors_total{store=\"dynamodb\"}"));
    }

    [Fact]
    public void AllInstruments_Exercised_ExposeTheDocumentedFamilies()
    {
        using var services = new TelemetryServices();

        GatewayMetricsExercise.RecordEverything(services);
        var families = services.Scrape().Types.Where(t => t.Key.StartsWith("llmproxy_", StringComparison.Ordinal) || t.Key.StartsWith("gen_ai_", StringComparison.Ordinal));

        Assert.Equal(
            new Dictionary<string, string>
            {
                ["gen_ai_client_operation_duration_seconds"] = "histogram",
                ["gen_ai_client_token_usage"] = "histogram",
                ["gen_ai_server_time_to_first_token_seconds"] = "histogram",
                ["llmproxy_cache_requests_total"] = "counter",
                ["llmproxy_cache_store_duration_seconds"] = "histogram",
                ["llmproxy_cache_store_errors_total"] = "counter",
                ["llmproxy_cost_usd_total"] = "counter",
                ["llmproxy_deployment_breaker_state"] = "gauge",
                ["llmproxy_failovers_total"] = "counter",
                ["llmproxy_pricing_missing_total"] = "counter",
                ["llmproxy_ratelimit_budget_remaining_usd"] = "gauge",
                ["llmproxy_ratelimit_rejections_total"] = "counter",
                ["llmproxy_ratelimit_store_failures_total"] = "counter",
                ["llmproxy_request_duration_seconds"] = "histogram",
                ["llmproxy_requests_in_flight"] = "gauge",
                ["llmproxy_requests_total"] = "counter",
                ["llmproxy_streams_in_flight"] = "gauge",
                ["llmproxy_upstream_attempts_total"] = "counter",
                ["llmproxy_upstream_duration_seconds"] = "histogram",
                ["llmproxy_usage_ledger_dropped_total"] = "counter",
                ["llmproxy_usage_ledger_queue_depth"] = "gauge",
                ["llmproxy_usage_ledger_spilled_total"] = "counter",
                ["llmproxy_usage_ledger_write_errors_total"] = "counter",
            },
            families.ToDictionary());
    }

    [Fact]
    public void RecordRequestCompleted_OneRequest_DurationLandsInTheGatewaysBucketsNotTheExportersDefaults()
    {
        using var services = new TelemetryServices();

        services.Metrics.RecordRequestCompleted(new RequestOutcome("acme", "gpt-4o", "openai", "d1", 200, Stream: false, TimeSpan.FromMilliseconds(300)));
        var scrape = services.Scrape();

        const string Labels = "model=\"gpt-4o\",provider=\"openai\",status_class=\"2xx\",stream=\"false\",tenant=\"acme\"";
        var bounds = scrape.SeriesOf("llmproxy_request_duration_seconds_bucket")
            .Select(k => k[(k.IndexOf("le=\"", StringComparison.Ordinal) + 4)..^2]).ToList();
        Assert.Equal(["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120", "300", "+Inf"], bounds);
        Assert.Equal(0, scrape.Value($"llmproxy_request_duration_seconds_bucket{{{Labels},le=\"0.25\"}}"));
        Assert.Equal(1, scrape.Value($"llmproxy_request_duration_seconds_bucket{{{Labels},le=\"0.5\"}}"));
        Assert.Equal(0.3, scrape.Value($"llmproxy_request_duration_seconds_sum{{{Labels}}}"), 6);
    }

    [Fact]
    public void RecordRateLimitRejection_MoreLabelSetsThanMaxSeriesPerMetric_ExtraOnesCountInTheOverflowSeries()
    {
        using var services = new TelemetryServices(new Dictionary<string, string?> { ["LlmProxy:Metrics:MaxSeriesPerMetric"] = "4" });

        for (var i = 0; i < 10; i++)
        {
            services.Metrics.RecordRateLimitRejection("tenant-" + i, "tokens");
        }
        var scrape = services.Scrape();

        var series = scrape.SeriesOf("llmproxy_ratelimit_rejections_total").ToList();
        Assert.Equal(5, series.Count); // four label sets, then the overflow series
        Assert.Contains("llmproxy_ratelimit_rejections_total{otel_metric_overflow=\"true\"}", series);
        Assert.Equal(10, series.Sum(scrape.Value)); // nothing is lost, only folded
    }

    [Fact]
    public void AllInstruments_EveryInstrumentTheFeaturesDeclare_IsExercisedAndCreatedOnce()
    {
        using var services = new TelemetryServices();
        var published = new List<Instrument>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, services.MeterFactory))
                {
                    lock (published)
                    {
                        published.Add(instrument);
                    }
                }
            },
        };
        listener.Start(); // publishes the instruments that exist already (GatewayMetrics'), then each new one

        GatewayMetricsExercise.RecordEverything(services);
        var scrape = services.Scrape();

        // One instrument per name: two with one name would be exposed as one family with whichever description came first.
        var duplicates = published.GroupBy(i => i.Name, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key);
        Assert.Empty(duplicates);
        // Whatever a feature declares is exercised, so the README and promtool checks built on this exercise see it.
        foreach (var instrument in published)
        {
            Assert.True(scrape.Help.Values.Contains(instrument.Description), $"{instrument.Name} is declared but not exercised by GatewayMetricsExercise (no family has its description)");
        }
    }

    [Fact]
    public void RateLimitRejection_RecordedByTheRateLimiter_IsTheGatewayInstrumentWithItsDescription()
    {
        using var services = new TelemetryServices();
        var (_, rateLimits) = GatewayMetricsExercise.CreateFeatureMetrics(services.MeterFactory, services.Metrics);

        rateLimits.Rejected("acme", RateLimitKind.DailyBudget);
        services.Metrics.RecordRateLimitRejection("acme", "budget_daily");
        var scrape = services.Scrape();

        Assert.Equal(2, scrape.Value("llmproxy_ratelimit_rejections_total{limit=\"budget_daily\",tenant=\"acme\"}"));
        Assert.Equal("Chat completion requests refused by a rate limit or budget, by tenant and kind of limit.", scrape.Help["llmproxy_ratelimit_rejections_total"]);
    }

    [Fact]
    public void RecordMethods_NoListener_DoNothingAndDoNotThrow()
    {
        var services = new ServiceCollection().AddMetrics();
        using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IMeterFactory>();
        var metrics = new GatewayMetrics(factory);

        using var scope = metrics.TrackRequestInFlight();
        GatewayMetricsExercise.RecordEverything(metrics);
        var (metering, rateLimits) = GatewayMetricsExercise.CreateFeatureMetrics(factory, metrics);
        GatewayMetricsExercise.RecordEverything(metering, rateLimits);
    }

    [Theory]
    [InlineData("gpt-4o", "gpt-4o")]
    [InlineData("GPT-4O", "unknown")]
    [InlineData("made-up-model", "unknown")]
    [InlineData(null, "unknown")]
    public void Model_ClientModelName_IsItselfOnlyWhenConfigured(string? requested, string expected)
    {
        var routes = new Dictionary<string, int>(StringComparer.Ordinal) { ["gpt-4o"] = 1 };

        Assert.Equal(expected, MetricLabels.Model(requested, routes));
    }

    [Theory]
    [InlineData(200, "2xx")]
    [InlineData(299, "2xx")]
    [InlineData(404, "4xx")]
    [InlineData(499, "4xx")]
    [InlineData(503, "5xx")]
    [InlineData(101, "1xx")]
    [InlineData(0, "other")]
    [InlineData(600, "other")]
    public void StatusClass_StatusCode_IsItsClass(int status, string expected)
    {
        Assert.Equal(expected, MetricLabels.StatusClass(status));
    }

    [Theory]
    [InlineData("status_429", UpstreamOutcomes.RateLimited)]
    [InlineData("status_401", UpstreamOutcomes.AuthError)]
    [InlineData("status_403", UpstreamOutcomes.AuthError)]
    [InlineData("status_408", UpstreamOutcomes.Timeout)]
    [InlineData("status_504", UpstreamOutcomes.Timeout)]
    [InlineData("timeout", UpstreamOutcomes.Timeout)]
    [InlineData("status_400", UpstreamOutcomes.ClientError)]
    [InlineData("status_422", UpstreamOutcomes.ClientError)]
    [InlineData("status_500", UpstreamOutcomes.ServerError)]
    [InlineData("status_503", UpstreamOutcomes.ServerError)]
    [InlineData("connect_error", UpstreamOutcomes.ConnectError)]
    [InlineData("forwarder_responsebodydestination", UpstreamOutcomes.TransportError)]
    [InlineData("response_body_error", UpstreamOutcomes.TransportError)]
    [InlineData("protocol_error", UpstreamOutcomes.ProtocolError)]
    [InlineData("stream_error_before_first_byte", UpstreamOutcomes.StreamError)]
    [InlineData("client_disconnected", UpstreamOutcomes.ClientDisconnected)]
    [InlineData("status_3000", UpstreamOutcomes.Other)]
    [InlineData("something new", UpstreamOutcomes.Other)]
    [InlineData(null, UpstreamOutcomes.Other)]
    public void FromReason_FailureReason_MapsToBoundedOutcome(string? reason, string expected)
    {
        Assert.Equal(expected, UpstreamOutcomes.FromReason(reason));
    }

    [Theory]
    [InlineData(429, UpstreamOutcomes.RateLimited)]
    [InlineData(403, UpstreamOutcomes.AuthError)]
    [InlineData(504, UpstreamOutcomes.Timeout)]
    [InlineData(400, UpstreamOutcomes.ClientError)]
    [InlineData(500, UpstreamOutcomes.ServerError)]
    public void FromFailure_ProviderOwnReason_ClassedByTheStatusItWasMappedTo(int status, string expected)
    {
        var failure = UpstreamFailure.FromStatus(status, "d1", null, null) with { Reason = "acme_SomethingHappened" };

        Assert.Equal(expected, UpstreamOutcomes.FromFailure(failure));
    }

    [Fact]
    public void FromFailure_ProviderOwnReasonWithoutStatus_IsOther() =>
        Assert.Equal(UpstreamOutcomes.Other, UpstreamOutcomes.FromFailure(UpstreamFailure.FromStatus(503, "d1", null, null) with { Reason = "acme_x", UpstreamStatus = null }));
}

/// <summary>Calls every recording method with realistic values, including label values that need escaping.</summary>
internal static class GatewayMetricsExercise
{
    /// <summary>
    /// Every instrument of the gateway's meter: <see cref="GatewayMetrics"/>' and those the metering and rate-limit
    /// features add, created on the services' meter factory so that their collector sees them.
    /// </summary>
    public static void RecordEverything(TelemetryServices services)
    {
        RecordEverything(services.Metrics);
        var (metering, rateLimits) = CreateFeatureMetrics(services.MeterFactory, services.Metrics);
        RecordEverything(metering, rateLimits);
    }

    /// <summary>The metering and rate-limit features' metrics, as their registrations build them (on the gateway's instruments).</summary>
    public static (MeteringMetrics Metering, RateLimitMetrics RateLimits) CreateFeatureMetrics(IMeterFactory factory, GatewayMetrics gateway)
    {
        var budgets = new RateLimitOptions { Tenants = { ["acme"] = new TenantRateLimitOptions { DailyBudgetUsd = 5m, MonthlyBudgetUsd = 100m } } };
        var policies = new RateLimitPolicyProvider(new RateLimitPolicyProviderTests.MutableOptionsMonitor(budgets), NullLogger<RateLimitPolicyProvider>.Instance);
        return (new MeteringMetrics(factory, gateway), new RateLimitMetrics(factory, gateway, policies, TimeProvider.System));
    }

    /// <summary>The recording methods the metering and rate-limit features have beyond <see cref="GatewayMetrics"/>.</summary>
    public static void RecordEverything(MeteringMetrics metering, RateLimitMetrics rateLimits)
    {
        metering.PriceMissing("gpt-unpriced");
        metering.Dropped(2);
        rateLimits.Rejected("acme", RateLimitKind.DailyBudget);
        rateLimits.StoreFailed("acquire");
        rateLimits.ObserveSpend("acme", new ScopeLimits(null, null, null, 5m, 100m), BudgetPeriods.At(TimeProvider.System.GetUtcNow()), new BudgetSpend(1.25m, 10m));
    }

    public static void RecordEverything(GatewayMetrics metrics)
    {
        var openAi = TestChats.Deployment("openai-gpt-4o", "gpt-4o");
        var bedrock = TestChats.Deployment("bedrock-claude", "claude", provider: "bedrock", genAiProvider: "aws.bedrock");

        using (metrics.TrackRequestInFlight())
        using (metrics.TrackStreamInFlight())
        {
            var served = TestChats.Chat("acme", openAi, stream: false);
            served.ServedBy = openAi;
            served.Usage = new TokenUsage(1200, 350, 1550);
            metrics.RecordRequestCompleted(served, StatusCodes.Status200OK);

            var streamed = TestChats.Chat("tenant \"quoted\" \\ with\nnewline", bedrock, stream: true);
            streamed.ServedBy = bedrock;
            streamed.TimeToFirstToken = TimeSpan.FromMilliseconds(420);
            streamed.Usage = new TokenUsage(80, 1000, 1080);
            metrics.RecordRequestCompleted(streamed, StatusCodes.Status200OK);

            var failed = TestChats.Chat("acme", openAi, stream: false);
            metrics.RecordRequestCompleted(failed, StatusCodes.Status502BadGateway);
        }

        metrics.RecordUpstreamAttempt(openAi, UpstreamOutcomes.RateLimited, TimeSpan.FromMilliseconds(80));
        metrics.RecordUpstreamAttempt(bedrock, UpstreamOutcomes.Success, TimeSpan.FromSeconds(3.2));
        metrics.RecordFailover("gpt-4o", "openai-gpt-4o", UpstreamOutcomes.RateLimited);
        metrics.SetBreakerStateSource(() => [("openai-gpt-4o", BreakerStates.Open), ("bedrock-claude", BreakerStates.Closed)]);
        metrics.RecordCacheRequest("acme", "gpt-4o", CacheResult.Miss);
        metrics.RecordCacheStoreError("redis", "set");
        metrics.RecordCacheStoreDuration("redis", "get", TimeSpan.FromMilliseconds(1.5));
        metrics.RecordCost("acme", "gpt-4o", "openai", 0.00425m);
        metrics.RecordRateLimitRejection("acme", "requests");
        metrics.SetUsageLedgerQueueDepthSource(() => 7);
        metrics.RecordUsageLedgerSpilled();
        metrics.RecordUsageLedgerWriteError("sqlite");
    }
}
