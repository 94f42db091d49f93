using LlmProxy.Tenancy;
using Microsoft.Extensions.Options;

namespace LlmProxy.Telemetry;

/// <summary>
/// The <c>LlmProxy:Metrics</c> configuration section: the Prometheus endpoint. Read once at startup;
/// changing it needs a restart.
/// </summary>
public sealed class MetricsOptions
{
    public const string SectionName = "LlmProxy:Metrics";

    /// <summary>Serve the Prometheus endpoint and collect metrics for it (read at startup). The default is true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Path of the endpoint. The default is <c>/metrics</c>.</summary>
    public string Path { get; set; } = "/metrics";

    /// <summary>
    /// SHA-256 hex of a key the scraper must send as <c>Authorization: Bearer &lt;key&gt;</c> (make one with
    /// <c>llmproxy hash-key --new</c>). The default is none: the endpoint is open, so serve it on a private
    /// <see cref="Port"/> or keep it off the public network.
    /// </summary>
    public string? ApiKeyHash { get; set; }

    /// <summary>
    /// Serve the endpoint only to connections accepted on this local port (it answers 404 on every other port; the
    /// Host header plays no part, so it cannot be spoofed past). The gateway must also
    /// listen on it: add it to <c>Urls</c> (e.g. <c>http://0.0.0.0:8080;http://127.0.0.1:9464</c>) or to the
    /// Kestrel endpoints. The default is none: the endpoint is served on every port the gateway listens on.
    /// </summary>
    public int? Port { get; set; }

    /// <summary>
    /// Most distinct label sets kept per metric of the gateway (OpenTelemetry's cardinality limit). Past it, new label
    /// sets are counted in one more series, labelled <c>otel_metric_overflow="true"</c>. The default is 2000.
    /// </summary>
    public int MaxSeriesPerMetric { get; set; } = 2000;
}

internal sealed class MetricsOptionsValidator : IValidateOptions<MetricsOptions>
{
    public ValidateOptionsResult Validate(string? name, MetricsOptions options)
    {
        var errors = new List<string>();
        if (options.Enabled)
        {
            if (string.IsNullOrWhiteSpace(options.Path) || !options.Path.StartsWith('/'))
            {
                errors.Add($"{MetricsOptions.SectionName}:Path must start with '/'.");
            }
            if (options.ApiKeyHash is { Length: > 0 } hash && !ApiKeyHasher.IsValidHash(hash))
            {
                errors.Add($"{MetricsOptions.SectionName}:ApiKeyHash must be the SHA-256 hex of the key (64 hex characters); create one with 'llmproxy hash-key'.");
            }
            if (options.Port is { } port && port is < 1 or > 65535)
            {
                errors.Add($"{MetricsOptions.SectionName}:Port must be between 1 and 65535.");
            }
            if (options.MaxSeriesPerMetric < 1)
            {
                errors.Add($"{MetricsOptions.SectionName}:MaxSeriesPerMetric must be at least 1.");
            }
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
