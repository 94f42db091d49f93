using LlmProxy.Tenancy;

namespace LlmProxy.IntegrationTests.Infrastructure;

/// <summary>Builds gateway configuration as flat key/value pairs, the way an operator's JSON file binds.</summary>
internal sealed class GatewaySettings
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.OrdinalIgnoreCase);

    public IReadOnlyDictionary<string, string?> Values => _values;

    public GatewaySettings Set(string key, string? value)
    {
        _values[key] = value;
        return this;
    }

    public GatewaySettings Tenant(string name, string key, params string[] allowedModels)
    {
        _values[$"LlmProxy:Tenants:{name}:Keys:{name}-key"] = ApiKeyHasher.Hash(key);
        for (var i = 0; i < allowedModels.Length; i++)
        {
            _values[$"LlmProxy:Tenants:{name}:AllowedModels:{i}"] = allowedModels[i];
        }
        return this;
    }

    public GatewaySettings AdminKey(string key)
    {
        _values["LlmProxy:AdminKeys:admin"] = ApiKeyHasher.Hash(key);
        return this;
    }

    public GatewaySettings Deployment(string model, string id, string provider, string baseUrl, int priority = 0, int weight = 1,
        string? upstreamModel = null, string? apiKeyEnv = null, Action<DeploymentSettings>? configure = null)
    {
        var prefix = $"LlmProxy:Models:{model}:Deployments:{id}";
        _values[$"{prefix}:Provider"] = provider;
        _values[$"{prefix}:BaseUrl"] = baseUrl;
        _values[$"{prefix}:Priority"] = priority.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _values[$"{prefix}:Weight"] = weight.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (upstreamModel is not null)
        {
            _values[$"{prefix}:UpstreamModel"] = upstreamModel;
        }
        if (apiKeyEnv is not null)
        {
            _values[$"{prefix}:ApiKeyEnv"] = apiKeyEnv;
        }
        configure?.Invoke(new DeploymentSettings(_values, prefix));
        return this;
    }

    /// <summary>An OpenAI-compatible deployment on a simulator.</summary>
    public GatewaySettings OpenAi(string model, string id, Uri simulator, int priority = 0, int weight = 1, string? apiKeyEnv = null,
        Action<DeploymentSettings>? configure = null) =>
        Deployment(model, id, "openai", new Uri(simulator, "v1").ToString(), priority, weight, apiKeyEnv: apiKeyEnv, configure: configure);

    internal sealed class DeploymentSettings(Dictionary<string, string?> values, string prefix)
    {
        public DeploymentSettings Set(string key, string value)
        {
            values[$"{prefix}:{key}"] = value;
            return this;
        }
    }
}
