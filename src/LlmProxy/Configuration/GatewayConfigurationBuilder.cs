using System.Collections.Frozen;
using LlmProxy.Forwarding;
using LlmProxy.Providers;
using LlmProxy.Routing;
using LlmProxy.Tenancy;

namespace LlmProxy.Configuration;

/// <summary>
/// Validates <see cref="LlmProxyOptions"/> and builds a <see cref="GatewayConfiguration"/> from it. Every
/// problem is collected, so an operator fixes a broken configuration in one pass instead of one error per restart.
/// </summary>
public sealed class GatewayConfigurationBuilder(ProviderRegistry providers) : IDisposable
{
    private readonly UpstreamInvokerFactory _invokers = new();

    /// <summary>Disposes the upstream HTTP clients shared by every configuration this builder has built.</summary>
    public void Dispose() => _invokers.Dispose();

    public GatewayConfiguration? Build(LlmProxyOptions options, out IReadOnlyList<string> errors)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>();
        var warnings = new List<string>();

        if (options.MaxRequestBodyBytes <= 0)
        {
            problems.Add($"{LlmProxyOptions.SectionName}:MaxRequestBodyBytes must be positive.");
        }

        if (options.ShutdownGracePeriod < TimeSpan.Zero)
        {
            problems.Add($"{LlmProxyOptions.SectionName}:ShutdownGracePeriod must not be negative.");
        }
        if (options.ShutdownFlushTimeout <= TimeSpan.Zero)
        {
            problems.Add($"{LlmProxyOptions.SectionName}:ShutdownFlushTimeout must be positive.");
        }

        var adminHashes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (id, hash) in options.AdminKeys)
        {
            if (!ApiKeyHasher.IsValidHash(hash))
            {
                problems.Add($"{LlmProxyOptions.SectionName}:AdminKeys:{id} must be the SHA-256 hex of the key (64 hex digits); produce it with 'llmproxy hash-key'.");
            }
            else
            {
                adminHashes.Add(hash.ToLowerInvariant());
            }
        }

        if (options.QuickStartDefaultsLeftOut.Count > 0)
        {
            warnings.Add($"the configuration defines tenants of its own, so the quick start's defaults in appsettings.json are left out: "
                + $"{string.Join(", ", options.QuickStartDefaultsLeftOut)}. Set {LlmProxyOptions.SectionName}:{nameof(LlmProxyOptions.KeepQuickStartDefaults)} to true to keep them.");
        }

        var routes = BuildRoutes(options, problems, warnings);
        var keys = BuildTenants(options, routes, adminHashes, problems);

        if (problems.Count > 0)
        {
            errors = problems;
            return null;
        }
        errors = [];
        return new GatewayConfiguration(options, keys, adminHashes.ToFrozenSet(StringComparer.Ordinal),
            routes.ToFrozenDictionary(StringComparer.Ordinal), warnings);
    }

    private Dictionary<string, ModelRoute> BuildRoutes(LlmProxyOptions options, List<string> problems, List<string> warnings)
    {
        var routes = new Dictionary<string, ModelRoute>(StringComparer.Ordinal);
        var deploymentIds = new Dictionary<string, string>(StringComparer.Ordinal);
        if (options.Models.Count == 0)
        {
            problems.Add($"{LlmProxyOptions.SectionName}:Models is empty: configure at least one model and its deployments."
                + (options.QuickStartDefaultsLeftOut.Count > 0 ? " (The quick start's models in appsettings.json are left out because the configuration defines tenants of its own.)" : ""));
        }

        foreach (var (modelName, model) in options.Models)
        {
            var modelPath = $"{LlmProxyOptions.SectionName}:Models:{modelName}";
            if (model?.Deployments is not { Count: > 0 })
            {
                problems.Add($"{modelPath} has no deployments.");
                continue;
            }

            if (model.Retry is null || model.Retry.MaxAttempts < 1 || model.Retry.Deadline <= TimeSpan.Zero)
            {
                problems.Add($"{modelPath}:Retry needs MaxAttempts of 1 or more and a positive Deadline.");
            }
            var deployments = new List<Deployment>();
            foreach (var (id, deployment) in model.Deployments)
            {
                var path = $"{modelPath}:Deployments:{id}";
                if (deployment is null)
                {
                    problems.Add($"{path} is empty.");
                    continue;
                }
                if (deploymentIds.TryGetValue(id, out var otherModel))
                {
                    problems.Add($"{path}: deployment id '{id}' is also used by model '{otherModel}'; deployment ids must be unique.");
                    continue;
                }
                deploymentIds[id] = modelName;

                var before = problems.Count;
                ValidateCommon(path, deployment, problems);
                if (!providers.TryGet(deployment.Provider, out var provider))
                {
                    problems.Add($"{path}:Provider '{deployment.Provider}' is unknown; known providers: {string.Join(", ", providers.Names)}.");
                    continue;
                }
                provider.Validate(path, deployment, problems);
                if (problems.Count > before)
                {
                    continue;
                }

                var authenticator = provider.CreateAuthenticator(id, deployment);
                if (authenticator.UnavailableReason is { } reason)
                {
                    warnings.Add($"{path} is disabled: {reason}");
                }
                deployments.Add(new Deployment(id, modelName, provider, deployment, provider.GetBaseUri(deployment),
                    authenticator, _invokers.Get(deployment.Timeouts)));
            }
            routes[modelName] = new ModelRoute(modelName, deployments, model.Retry ?? new RetryBudgetOptions());
        }
        return routes;
    }

    private static void ValidateCommon(string path, DeploymentOptions deployment, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(deployment.Provider))
        {
            problems.Add($"{path}:Provider is required.");
        }
        if (deployment.Priority < 0)
        {
            problems.Add($"{path}:Priority must be 0 or more.");
        }
        if (deployment.Weight < 1)
        {
            problems.Add($"{path}:Weight must be 1 or more.");
        }
        var timeouts = deployment.Timeouts;
        if (timeouts is null)
        {
            problems.Add($"{path}:Timeouts is empty.");
            return;
        }
        if (timeouts.Connect <= TimeSpan.Zero || timeouts.FirstByte <= TimeSpan.Zero || timeouts.Total <= TimeSpan.Zero)
        {
            problems.Add($"{path}:Timeouts must all be positive durations (e.g. \"00:00:05\").");
        }
        if (deployment.Breaker is not { } breaker
            || breaker.ConsecutiveFailures is < 1
            || breaker.FailureRatio is <= 0 or > 1
            || breaker.MinimumThroughput < 2
            || breaker.SamplingDuration < TimeSpan.FromMilliseconds(500)
            || breaker.BreakDuration < TimeSpan.FromMilliseconds(500))
        {
            problems.Add($"{path}:Breaker needs ConsecutiveFailures >= 1, FailureRatio in (0, 1], MinimumThroughput >= 2, and SamplingDuration and BreakDuration of at least 0.5 s.");
        }
        if (deployment.BaseUrl is { Length: > 0 } url
            && (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)))
        {
            problems.Add($"{path}:BaseUrl '{url}' is not an absolute http(s) URL.");
        }
    }

    private static FrozenDictionary<string, TenantIdentity> BuildTenants(LlmProxyOptions options, Dictionary<string, ModelRoute> routes,
        HashSet<string> adminHashes, List<string> problems)
    {
        var keys = new Dictionary<string, TenantIdentity>(StringComparer.Ordinal);
        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (tenantName, tenantOptions) in options.Tenants)
        {
            var path = $"{LlmProxyOptions.SectionName}:Tenants:{tenantName}";
            if (tenantOptions is null)
            {
                problems.Add($"{path} is empty.");
                continue;
            }
            if (tenantOptions.Keys.Count == 0)
            {
                problems.Add($"{path}:Keys is empty: a tenant needs at least one key.");
            }
            foreach (var model in tenantOptions.AllowedModels)
            {
                if (!routes.ContainsKey(model) && !options.Models.ContainsKey(model))
                {
                    problems.Add($"{path}:AllowedModels names '{model}', which is not a configured model.");
                }
            }

            var tenant = new Tenant(tenantName, tenantOptions.AllowedModels);
            foreach (var (keyId, hash) in tenantOptions.Keys)
            {
                if (!ApiKeyHasher.IsValidHash(hash))
                {
                    problems.Add($"{path}:Keys:{keyId} must be the SHA-256 hex of the key (64 hex digits); produce it with 'llmproxy hash-key'.");
                    continue;
                }
                var normalized = hash.ToLowerInvariant();
                if (owners.TryGetValue(normalized, out var other))
                {
                    problems.Add($"{path}:Keys:{keyId} is the same key as {other}.");
                    continue;
                }
                if (adminHashes.Contains(normalized))
                {
                    problems.Add($"{path}:Keys:{keyId} is also an admin key; admin keys must be distinct from tenant keys.");
                    continue;
                }
                owners[normalized] = $"{path}:Keys:{keyId}";
                keys[normalized] = new TenantIdentity(tenant, keyId);
            }
        }
        return keys.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
