using LlmProxy.Telemetry;
using Xunit;

namespace LlmProxy.Tests.Telemetry;

public sealed class PrometheusNamesTests
{
    [Theory]
    [InlineData("gen_ai.client.token.usage", "{token}", "Histogram", "gen_ai_client_token_usage")]
    [InlineData("gen_ai.client.operation.duration", "s", "Histogram", "gen_ai_client_operation_duration_seconds")]
    [InlineData("gen_ai.server.time_to_first_token", "s", "Histogram", "gen_ai_server_time_to_first_token_seconds")]
    [InlineData("llmproxy.requests", "{request}", "Counter", "llmproxy_requests_total")]
    [InlineData("llmproxy.request.duration", "s", "Histogram", "llmproxy_request_duration_seconds")]
    [InlineData("llmproxy.requests.in_flight", "{request}", "Gauge", "llmproxy_requests_in_flight")]
    [InlineData("llmproxy.cost", "USD", "Counter", "llmproxy_cost_usd_total")]
    [InlineData("http.server.request.size", "By", "Histogram", "http_server_request_size_bytes")]
    [InlineData("x.latency", "ms", "Histogram", "x_latency_milliseconds")]
    [InlineData("net.throughput", "By/s", "Gauge", "net_throughput_bytes_per_second")]
    [InlineData("req.rate", "{request}/min", "Gauge", "req_rate_per_minute")]
    [InlineData("cpu.utilization", "1", "Gauge", "cpu_utilization_ratio")]
    [InlineData("events", "1", "Counter", "events_total")]
    [InlineData("no.unit", null, "Gauge", "no_unit")]
    [InlineData("no.unit", "", "Gauge", "no_unit")]
    public void MetricName_OtelInstrument_FollowsPrometheusConventions(string name, string? unit, string type, string expected)
    {
        Assert.Equal(expected, PrometheusNames.MetricName(name, unit, Enum.Parse<PrometheusMetricType>(type)));
    }

    [Theory]
    [InlineData("queue.wait_seconds", "s", "Histogram", "queue_wait_seconds")]
    [InlineData("bytes.sent_bytes_total", "By", "Counter", "bytes_sent_bytes_total")]
    [InlineData("jobs_total", "{job}", "Counter", "jobs_total")]
    public void MetricName_UnitOrTotalAlreadyInName_IsNotRepeated(string name, string unit, string type, string expected)
    {
        Assert.Equal(expected, PrometheusNames.MetricName(name, unit, Enum.Parse<PrometheusMetricType>(type)));
    }

    [Theory]
    [InlineData("a-b c..d", "a_b_c_d")]
    [InlineData("ns:metric", "ns_metric")]
    [InlineData("9lives", "_9lives")]
    [InlineData("é", "_")]
    [InlineData("trailing.", "trailing_")]
    public void MetricName_InvalidCharacters_AreReplacedAndCollapsed(string name, string expected)
    {
        Assert.Equal(expected, PrometheusNames.MetricName(name, null, PrometheusMetricType.Gauge));
    }

    [Theory]
    [InlineData("gen_ai.token.type", "gen_ai_token_type")]
    [InlineData("error.type", "error_type")]
    [InlineData("status_class", "status_class")]
    [InlineData("__reserved", "_reserved")]
    [InlineData("1st", "key_1st")]
    public void LabelName_TagKey_IsValidPrometheusLabelName(string key, string expected)
    {
        Assert.Equal(expected, PrometheusNames.LabelName(key));
    }
}
