using LlmProxy.Health;
using LlmProxy.Hosting;
using LlmProxy.Pipeline;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LlmProxy.Metering;

public static class MeteringServiceCollectionExtensions
{
    /// <summary>Adds token and cost metering with the usage ledger; see <see cref="AddLlmProxyMetering(IServiceCollection)"/>.</summary>
    public static ILlmProxyBuilder AddLlmProxyMetering(this ILlmProxyBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLlmProxyMetering();
        return builder;
    }

    /// <summary>
    /// Adds token and cost metering: every chat request becomes a usage record (tokens, cost, latency, outcome) written to the
    /// usage store chosen by <c>LlmProxy:Metering:Store</c> off the request path, the store's readiness check, and the
    /// <c>llmproxy.cost.usd</c> and ledger metrics. Map the usage and pricing endpoints with <c>MapLlmProxyMetering()</c>.
    /// Registrations use TryAdd, so a host can replace the store (<see cref="IUsageStore"/>) or the clock.
    /// </summary>
    public static IServiceCollection AddLlmProxyMetering(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(MeteringMarker)))
        {
            return services;
        }
        services.AddSingleton(new MeteringMarker());

        services.AddOptions<MeteringOptions>()
            .BindConfiguration(MeteringOptions.SectionName)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeteringOptions>, MeteringOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();

        services.TryAddSingleton<Telemetry.GatewayMetrics>();
        services.TryAddSingleton<MeteringMetrics>();
        services.TryAddSingleton<PriceTableProvider>();
        services.TryAddSingleton<OpenAiTokenizers>();
        services.TryAddSingleton<UsageRecordFactory>();
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<MeteringOptions>>().Value;
            var directory = options.ResolvePath(sp.GetRequiredService<IHostEnvironment>().ContentRootPath, options.DataDirectory);
            return new UsageSpillFile(directory, sp.GetRequiredService<ILogger<UsageSpillFile>>());
        });
        services.TryAddSingleton<UsageLedger>();
        services.TryAddSingleton<IUsageStore>(CreateStore);
        services.TryAddSingleton<UsageLedgerWriter>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, UsageLedgerWriter>(sp => sp.GetRequiredService<UsageLedgerWriter>()));
        services.TryAddSingleton<UsageEndpoints>();

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatMiddleware, MeteringChatMiddleware>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatRequestCompletionListener, UsageRecorder>());

        services.AddHealthChecks().AddCheck<UsageLedgerHealthCheck>("usage_ledger", tags: [HealthEndpoints.ReadinessTag]);
        return services;
    }

    private static IUsageStore CreateStore(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<MeteringOptions>>().Value;
        if (string.Equals(options.Store, UsageStoreNames.DynamoDb, StringComparison.OrdinalIgnoreCase))
        {
            return new DynamoDbUsageStore(DynamoDbUsageStore.CreateClient(options.DynamoDb), options.DynamoDb,
                services.GetRequiredService<TimeProvider>(), ownsClient: true);
        }
        var directory = options.ResolvePath(services.GetRequiredService<IHostEnvironment>().ContentRootPath, options.DataDirectory);
        return new SqliteUsageStore(Path.Combine(directory, SqliteUsageStore.FileName));
    }
}

/// <summary>Makes <c>AddLlmProxyMetering</c> and <c>MapLlmProxyMetering</c> safe to call more than once.</summary>
internal sealed class MeteringMarker
{
    private int _endpointsMapped;

    /// <summary>True the first time only.</summary>
    public bool TryMapEndpoints() => Interlocked.Exchange(ref _endpointsMapped, 1) == 0;
}

/// <summary>Reports every problem of <c>LlmProxy:Metering</c> at startup.</summary>
internal sealed class MeteringOptionsValidator : IValidateOptions<MeteringOptions>
{
    public ValidateOptionsResult Validate(string? name, MeteringOptions options)
    {
        var problems = options.Validate().ToArray();
        return problems.Length == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
