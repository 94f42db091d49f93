using Microsoft.Extensions.Options;

namespace LlmProxy.Configuration;

/// <summary>
/// Hands every bound deployment its own configuration section (<see cref="DeploymentOptions.Configuration"/>), from which
/// its provider binds the keys only that provider has. The binder cannot do it: a property is bound from the child
/// section of its own name. Runs on every binding, so a reload hands out the reloaded sections.
/// </summary>
internal sealed class DeploymentConfigurationSections(IConfiguration configuration) : IPostConfigureOptions<LlmProxyOptions>
{
    public void PostConfigure(string? name, LlmProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var models = configuration.GetSection(LlmProxyOptions.SectionName).GetSection(nameof(LlmProxyOptions.Models));
        foreach (var (modelName, model) in options.Models)
        {
            if (model?.Deployments is null)
            {
                continue;
            }
            var deployments = models.GetSection(modelName).GetSection(nameof(ModelRouteOptions.Deployments));
            foreach (var (id, deployment) in model.Deployments)
            {
                if (deployment is not null)
                {
                    deployment.Configuration = deployments.GetSection(id);
                }
            }
        }
    }
}
