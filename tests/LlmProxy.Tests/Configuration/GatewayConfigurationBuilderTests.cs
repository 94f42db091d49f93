using LlmProxy.Configuration;
using LlmProxy.Providers;
using LlmProxy.Providers.OpenAi;
using LlmProxy.Tenancy;

namespace LlmProxy.Tests.Configuration;

public sealed class GatewayConfigurationBuilderTests
{
    private static readonly string KeyHash = ApiKeyHasher.Hash("tenant-key");
    private static GatewayConfigurationBuilder Builder() => new(new ProviderRegistry([new OpenAiProvider()]));

    private static LlmProxyOptions ValidOptions() => new()
    {
        Tenants = { ["acme"] = new TenantOptions { Keys = { ["k1"] = KeyHash }, AllowedModels = ["gpt"] } },
        Models =
        {
            ["gpt"] = new ModelRouteOptions
            {
                Deployments =
                {
                    ["primary"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://127.0.0.1:1/v1", UpstreamModel = "gpt-4o" },
                    ["fallback"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://127.0.0.1:2/v1", Priority = 1 },
                },
            },
        },
    };

    [Fact]
    public void Build_ValidOptions_ResolvesKeysRoutesAndDeployments()
    {
        var config = Builder().Build(ValidOptions(), out var errors);

        Assert.Empty(errors);
        Assert.NotNull(config);
        var identity = config.KeysByHash[KeyHash];
        Assert.Equal("acme", identity.Tenant.Name);
        Assert.Equal("k1", identity.KeyId);
        Assert.True(identity.Tenant.Allows("gpt"));
        Assert.False(identity.Tenant.Allows("other"));
        var route = config.Routes["gpt"];
        Assert.Equal(["primary", "fallback"], route.Deployments.Select(d => d.Id));
        Assert.Equal("gpt-4o", route.Deployments[0].UpstreamModel);
        Assert.Equal("gpt", route.Deployments[1].UpstreamModel);
        Assert.Equal("http://127.0.0.1:1/v1", route.Deployments[0].DestinationPrefix);
    }

    [Fact]
    public void Build_Reloaded_ReusesTheUpstreamClientsInsteadOfLeakingNewOnes()
    {
        using var builder = Builder();
        var options = ValidOptions();
        options.Models["gpt"].Deployments["fallback"].Timeouts.Connect = TimeSpan.FromSeconds(3);

        var first = builder.Build(options, out _)!.Routes["gpt"].Deployments;
        var second = builder.Build(options, out _)!.Routes["gpt"].Deployments;

        // Each reload builds new deployments, but over the same HTTP clients: one per distinct connect timeout.
        Assert.NotSame(first[0], second[0]);
        Assert.Same(first[0].Invoker, second[0].Invoker);
        Assert.Same(first[1].Invoker, second[1].Invoker);
        Assert.NotSame(first[0].Invoker, first[1].Invoker);
    }

    [Fact]
    public void Build_ManyProblems_ReportsEveryOneOfThem()
    {
        var options = ValidOptions();
        options.Tenants["acme"].Keys["bad"] = "not-a-hash";
        options.Tenants["acme"].AllowedModels.Add("ghost");
        options.Tenants["empty"] = new TenantOptions();
        options.Models["gpt"].Deployments["primary"].Provider = "carrier-pigeon";
        options.Models["gpt"].Deployments["fallback"].BaseUrl = "ftp://nowhere";
        options.Models["gpt"].Deployments["fallback"].Weight = 0;
        options.Models["lonely"] = new ModelRouteOptions();
        options.Models["dup"] = new ModelRouteOptions { Deployments = { ["fallback"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://x" } } };

        var config = Builder().Build(options, out var errors);

        Assert.Null(config);
        Assert.Contains(errors, e => e.Contains("Tenants:acme:Keys:bad") && e.Contains("SHA-256"));
        Assert.Contains(errors, e => e.Contains("AllowedModels names 'ghost'"));
        Assert.Contains(errors, e => e.Contains("Tenants:empty:Keys is empty"));
        Assert.Contains(errors, e => e.Contains("Provider 'carrier-pigeon' is unknown") && e.Contains("openai"));
        Assert.Contains(errors, e => e.Contains("BaseUrl 'ftp://nowhere'"));
        Assert.Contains(errors, e => e.Contains("Weight must be 1 or more"));
        Assert.Contains(errors, e => e.Contains("Models:lonely has no deployments"));
        Assert.Contains(errors, e => e.Contains("deployment id 'fallback' is also used"));
    }

    [Fact]
    public void Build_SameKeyForTwoTenants_IsRejected()
    {
        var options = ValidOptions();
        options.Tenants["other"] = new TenantOptions { Keys = { ["k2"] = KeyHash.ToUpperInvariant() } };

        Builder().Build(options, out var errors);

        Assert.Contains(errors, e => e.Contains("is the same key as"));
    }

    [Fact]
    public void Build_AdminKeyReusedAsTenantKey_IsRejected()
    {
        var options = ValidOptions();
        options.AdminKeys["ops"] = KeyHash;

        Builder().Build(options, out var errors);

        Assert.Contains(errors, e => e.Contains("also an admin key"));
    }

    [Fact]
    public void Build_OpenAiWithoutBaseUrl_IsRejected()
    {
        var options = ValidOptions();
        options.Models["gpt"].Deployments["primary"].BaseUrl = null;

        Builder().Build(options, out var errors);

        Assert.Contains(errors, e => e.Contains("Deployments:primary:BaseUrl is required"));
    }

    [Fact]
    public void Build_CredentialVariableUnset_DisablesDeploymentWithWarning()
    {
        var options = ValidOptions();
        options.Models["gpt"].Deployments["primary"].ApiKeyEnv = "LLMPROXY_TEST_UNSET_" + Guid.NewGuid().ToString("N");

        var config = Builder().Build(options, out var errors);

        Assert.Empty(errors);
        Assert.False(config!.Deployments["primary"].IsEnabled);
        Assert.True(config.Deployments["fallback"].IsEnabled);
        Assert.Contains(config.Warnings, w => w.Contains("primary is disabled") && w.Contains("is not set"));
    }
}
