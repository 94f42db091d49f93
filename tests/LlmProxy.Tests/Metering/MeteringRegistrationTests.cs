using LlmProxy.Metering;
using LlmProxy.Pipeline;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace LlmProxy.Tests.Metering;

public sealed class MeteringRegistrationTests
{
    private static ServiceProvider Build(Dictionary<string, string?> settings, Action<IServiceCollection>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddLogging();
        services.AddSingleton<IHostEnvironment>(new TestHostEnvironment(Path.GetTempPath()));
        configure?.Invoke(services);
        services.AddLlmProxyMetering();
        services.AddLlmProxyMetering();
        return services.BuildServiceProvider();
    }

    [Fact]
    public void AddLlmProxyMetering_Twice_RegistersEverythingOnce()
    {
        var services = new ServiceCollection();
        services.AddLlmProxyMetering();
        services.AddLlmProxyMetering();

        Assert.Single(services, d => d.ServiceType == typeof(IHostedService) && d.ImplementationFactory is not null);
        Assert.Single(services, d => d.ServiceType == typeof(IChatRequestCompletionListener) && d.ImplementationType == typeof(UsageRecorder));
        Assert.Single(services, d => d.ServiceType == typeof(IChatMiddleware) && d.ImplementationType == typeof(MeteringChatMiddleware));
        using var provider = Build([]);
        Assert.Single(provider.GetRequiredService<IOptions<HealthCheckServiceOptions>>().Value.Registrations, r => r.Name == "usage_ledger");
        Assert.Same(provider.GetRequiredService<UsageLedgerWriter>(), provider.GetServices<IHostedService>().OfType<UsageLedgerWriter>().Single());
    }

    [Fact]
    public void AddLlmProxyMetering_StoreFromConfiguration()
    {
        using var sqlite = Build([]);
        Assert.IsType<SqliteUsageStore>(sqlite.GetRequiredService<IUsageStore>());

        using var dynamo = Build(new() { ["LlmProxy:Metering:Store"] = "DynamoDB", ["LlmProxy:Metering:DynamoDb:ServiceUrl"] = "http://127.0.0.1:1", ["LlmProxy:Metering:DynamoDb:Region"] = "eu-west-1" });
        Assert.IsType<DynamoDbUsageStore>(dynamo.GetRequiredService<IUsageStore>());
    }

    [Fact]
    public void AddLlmProxyMetering_StoreRegisteredByTheHost_Kept()
    {
        var store = new FakeUsageStore();
        using var provider = Build([], s => s.AddSingleton<IUsageStore>(store));

        Assert.Same(store, provider.GetRequiredService<IUsageStore>());
    }

    [Fact]
    public void Options_Invalid_EveryProblemReported()
    {
        using var provider = Build(new() { ["LlmProxy:Metering:Store"] = "mongo", ["LlmProxy:Metering:BatchSize"] = "0" });

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<MeteringOptions>>().Value);

        Assert.Contains(ex.Failures, f => f.Contains("'mongo'", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("BatchSize", StringComparison.Ordinal));
    }
}
