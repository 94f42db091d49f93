using LlmProxy.Configuration;
using LlmProxy.Providers;

namespace LlmProxy.Routing;

/// <summary>One backend deployment serving a model: a provider endpoint, an upstream model id and its credentials.</summary>
public sealed class Deployment
{
    internal Deployment(string id, string modelName, IChatProvider provider, DeploymentOptions options, Uri baseUri,
        IUpstreamAuthenticator authenticator, HttpMessageInvoker invoker)
    {
        Id = id;
        ModelName = modelName;
        Provider = provider;
        Options = options;
        BaseUri = baseUri;
        // The forwarder appends the relative path to this prefix as text, so keep it without a trailing slash.
        DestinationPrefix = baseUri.AbsoluteUri.TrimEnd('/');
        UpstreamModel = string.IsNullOrWhiteSpace(options.UpstreamModel) ? modelName : options.UpstreamModel;
        Authenticator = authenticator;
        Invoker = invoker;
    }

    public string Id { get; }

    /// <summary>The client-facing model name this deployment serves.</summary>
    public string ModelName { get; }

    public IChatProvider Provider { get; }
    public string ProviderName => Provider.Name;
    public DeploymentOptions Options { get; }
    public Uri BaseUri { get; }
    public string DestinationPrefix { get; }
    public string UpstreamModel { get; }
    public int Priority => Options.Priority;
    public int Weight => Options.Weight;
    public DeploymentTimeoutOptions Timeouts => Options.Timeouts;
    public CircuitBreakerOptions Breaker => Options.Breaker;

    /// <summary>Consecutive failures that open this deployment's breaker: configured, or the provider's default.</summary>
    public int ConsecutiveFailureThreshold => Options.Breaker.ConsecutiveFailures ?? Provider.DefaultConsecutiveFailures;
    public IUpstreamAuthenticator Authenticator { get; }
    public HttpMessageInvoker Invoker { get; }

    /// <summary>False when the deployment cannot be used at all, e.g. its credential variable is not set.</summary>
    public bool IsEnabled => Authenticator.UnavailableReason is null;
}

/// <summary>A client-facing model name and its deployments, ordered by priority (fallback order).</summary>
public sealed class ModelRoute(string name, IReadOnlyList<Deployment> deployments, RetryBudgetOptions retry)
{
    public string Name { get; } = name;
    public IReadOnlyList<Deployment> Deployments { get; } = deployments.OrderBy(d => d.Priority).ToArray();
    public RetryBudgetOptions Retry { get; } = retry;
}
