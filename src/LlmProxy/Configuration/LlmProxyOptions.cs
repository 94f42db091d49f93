namespace LlmProxy.Configuration;

/// <summary>
/// The <c>LlmProxy</c> configuration section: tenants, model routes and gateway-wide limits.
/// Bound from appsettings.json, optional files under config/, and environment variables
/// (<c>LlmProxy__Section__Key</c>).
/// </summary>
public sealed class LlmProxyOptions
{
    public const string SectionName = "LlmProxy";

    /// <summary>Largest accepted request body in bytes. The default is 10 MiB (images inline as data URLs are large).</summary>
    public long MaxRequestBodyBytes { get; set; } = 10 * 1024 * 1024;

    /// <summary>SHA-256 hashes (hex) of the admin keys, which are distinct from tenant keys. The default is none: admin endpoints are closed.</summary>
    public Dictionary<string, string> AdminKeys { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Tenants by name.</summary>
    public Dictionary<string, TenantOptions> Tenants { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Client-facing model names and the deployments that serve them.</summary>
    public Dictionary<string, ModelRouteOptions> Models { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// On shutdown (SIGTERM), how long in-flight requests and streams may run to completion after the gateway stops
    /// accepting new connections, before they are cut. The default is 30 seconds. Read at startup.
    /// </summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// On shutdown, after the grace period: how long the usage ledger (and every other background service) has to write out
    /// what it holds; records it cannot write in time go to the spill file. The process exits at most
    /// <see cref="ShutdownGracePeriod"/> + this after SIGTERM. The default is 10 seconds. Read at startup.
    /// </summary>
    public TimeSpan ShutdownFlushTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The in-process simulator used by the quick start.</summary>
    public EmbeddedSimulatorOptions Simulator { get; set; } = new();

    /// <summary>
    /// Keep the quick start's demo tenant (whose key the README publishes), its routes and its embedded simulator, all
    /// from the repository's <c>appsettings.json</c>, when the configuration defines tenants of its own. The default is
    /// false: a configuration with a tenant of its own leaves them out (with one warning at startup).
    /// </summary>
    public bool KeepQuickStartDefaults { get; set; }

    /// <summary>What of the quick start's defaults was left out (see <see cref="QuickStartDefaults"/>); empty when nothing was.</summary>
    internal IReadOnlyList<string> QuickStartDefaultsLeftOut { get; set; } = [];
}

public sealed class TenantOptions
{
    /// <summary>API keys of this tenant: key id (shown in logs and usage records) to the SHA-256 hex of the key.</summary>
    public Dictionary<string, string> Keys { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Models this tenant may use. Empty (the default) means every configured model.</summary>
    public List<string> AllowedModels { get; set; } = [];
}

public sealed class ModelRouteOptions
{
    /// <summary>Deployments by id. Ids are unique across all models: breakers and statistics are kept per deployment.</summary>
    public Dictionary<string, DeploymentOptions> Deployments { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How many deployments one request may try, and for how long in total.</summary>
    public RetryBudgetOptions Retry { get; set; } = new();
}

public sealed class RetryBudgetOptions
{
    /// <summary>Most upstream attempts for one request, failovers included. The default is 3.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>
    /// Time after which no further attempt is started, and which caps each attempt's own total timeout.
    /// The default is 10 minutes (the same as one deployment's total timeout).
    /// </summary>
    public TimeSpan Deadline { get; set; } = TimeSpan.FromMinutes(10);
}

public sealed class DeploymentOptions
{
    /// <summary>The name of a registered provider (the README lists them, each with the settings of its own).</summary>
    public string Provider { get; set; } = "";

    /// <summary>Base URL of the upstream API, e.g. <c>https://api.openai.com/v1</c>.</summary>
    public string? BaseUrl { get; set; }

    /// <summary>The model id the upstream knows; defaults to the client-facing model name.</summary>
    public string? UpstreamModel { get; set; }

    /// <summary>
    /// Name of the environment variable holding the upstream API key. The secret itself never appears in
    /// configuration files. A deployment whose variable is unset is disabled (with a warning at startup).
    /// </summary>
    public string? ApiKeyEnv { get; set; }

    /// <summary>Fallback order: lower numbers are tried first. The default is 0.</summary>
    public int Priority { get; set; }

    /// <summary>Share of traffic among deployments of the same priority. The default is 1.</summary>
    public int Weight { get; set; } = 1;

    public DeploymentTimeoutOptions Timeouts { get; set; } = new();

    public CircuitBreakerOptions Breaker { get; set; } = new();

    /// <summary>Provider-specific settings that are not common to all providers.</summary>
    public Dictionary<string, string> Settings { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// The deployment's own configuration section (set after configuration binding; null for options built in code). A
    /// provider binds the keys only it has (a cloud region, say) into a settings class of its own from here, so
    /// that they need no place among the common options.
    /// </summary>
    public IConfigurationSection? Configuration { get; set; }
}

public sealed class DeploymentTimeoutOptions
{
    /// <summary>TCP/TLS connect timeout. The default is 5 seconds.</summary>
    public TimeSpan Connect { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Longest wait for the upstream's response headers, and then for each next piece of the body
    /// (an idle timeout while streaming). The default is 120 seconds.
    /// </summary>
    public TimeSpan FirstByte { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Whole upstream exchange, body included. The default is 10 minutes.</summary>
    public TimeSpan Total { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// When a deployment is taken out of rotation. Failures are connection errors, timeouts, 5xx and 429;
/// client errors (400, 413, ...) are not. The breaker opens on whichever trips first: the failure ratio
/// over the sampling window (once the minimum throughput is reached), or the consecutive-failure count.
/// After the break one probe request is let through; its success closes the breaker.
/// </summary>
public sealed class CircuitBreakerOptions
{
    /// <summary>Failures in a row that open the breaker. The default is the provider's own (5 unless it says otherwise; see its section of the README).</summary>
    public int? ConsecutiveFailures { get; set; }

    /// <summary>Failure ratio over the sampling window that opens the breaker. The default is 0.5.</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Window over which the failure ratio is measured. The default is 30 seconds.</summary>
    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Requests needed in the window before the ratio can open the breaker. The default is 20.</summary>
    public int MinimumThroughput { get; set; } = 20;

    /// <summary>How long an open breaker keeps the deployment out before a probe. The default is 30 seconds.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);
}

public sealed class EmbeddedSimulatorOptions
{
    /// <summary>Start the simulator inside the gateway process. The default is false; the shipped appsettings.json turns it on for the quick start.</summary>
    public bool Enabled { get; set; }

    /// <summary>Loopback URL the embedded simulator listens on. The default is http://127.0.0.1:8091.</summary>
    public string Url { get; set; } = "http://127.0.0.1:8091";
}
