using LlmProxy.Configuration;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LlmProxy.Health;

/// <summary>Ready when every model has at least one deployment that can be used; degraded when only some do.</summary>
internal sealed class ConfigurationHealthCheck(GatewayConfigurationProvider configuration) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var routes = configuration.Current.Routes.Values;
        var unserved = routes.Where(r => !r.Deployments.Any(d => d.IsEnabled)).Select(r => r.Name).Order(StringComparer.Ordinal).ToArray();
        var result = unserved.Length == 0
            ? HealthCheckResult.Healthy("configuration valid; every model has an enabled deployment")
            : unserved.Length == routes.Count()
                ? HealthCheckResult.Unhealthy("no model has an enabled deployment")
                : HealthCheckResult.Degraded("models without an enabled deployment: " + string.Join(", ", unserved));
        return Task.FromResult(result);
    }
}
