using Microsoft.Extensions.Options;

namespace LlmProxy.Caching;

/// <summary>Reports every problem in the <c>LlmProxy:Cache</c> section at startup rather than on the first request.</summary>
internal sealed class ResponseCacheOptionsValidator : IValidateOptions<ResponseCacheOptions>
{
    public ValidateOptionsResult Validate(string? name, ResponseCacheOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        const string prefix = ResponseCacheOptions.SectionName;

        if (options.Ttl <= TimeSpan.Zero)
        {
            errors.Add($"{prefix}:Ttl must be positive.");
        }
        if (options.MaxEntryBytes <= 0)
        {
            errors.Add($"{prefix}:MaxEntryBytes must be positive.");
        }
        if (options.Memory.MaxBytes <= 0)
        {
            errors.Add($"{prefix}:Memory:MaxBytes must be positive.");
        }

        if (string.Equals(options.Store, ResponseCacheStores.Redis, StringComparison.OrdinalIgnoreCase))
        {
            if (string.IsNullOrWhiteSpace(options.Redis.Configuration))
            {
                errors.Add($"{prefix}:Redis:Configuration is required when {prefix}:Store is 'redis'.");
            }
            else
            {
                try
                {
                    _ = StackExchange.Redis.ConfigurationOptions.Parse(options.Redis.Configuration);
                }
                catch (ArgumentException ex)
                {
                    // The message names the offending option, never a password value.
                    errors.Add($"{prefix}:Redis:Configuration is not a valid StackExchange.Redis configuration: {ex.Message}");
                }
            }
            if (options.Redis.OperationTimeout <= TimeSpan.Zero)
            {
                errors.Add($"{prefix}:Redis:OperationTimeout must be positive.");
            }
            if (options.Redis.InitialBackoff <= TimeSpan.Zero || options.Redis.MaxBackoff < options.Redis.InitialBackoff)
            {
                errors.Add($"{prefix}:Redis:InitialBackoff must be positive and no longer than {prefix}:Redis:MaxBackoff.");
            }
        }
        else if (!string.Equals(options.Store, ResponseCacheStores.Memory, StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"{prefix}:Store must be '{ResponseCacheStores.Memory}' or '{ResponseCacheStores.Redis}', not '{options.Store}'.");
        }

        foreach (var (model, modelOptions) in options.Models)
        {
            if (modelOptions.Ttl is { } ttl && ttl <= TimeSpan.Zero)
            {
                errors.Add($"{prefix}:Models:{model}:Ttl must be positive.");
            }
            if (modelOptions.MaxEntryBytes is { } max && max <= 0)
            {
                errors.Add($"{prefix}:Models:{model}:MaxEntryBytes must be positive.");
            }
        }
        foreach (var (tenant, tenantOptions) in options.Tenants)
        {
            if (tenantOptions.Ttl is { } ttl && ttl <= TimeSpan.Zero)
            {
                errors.Add($"{prefix}:Tenants:{tenant}:Ttl must be positive.");
            }
            if (tenantOptions.MaxEntryBytes is { } max && max <= 0)
            {
                errors.Add($"{prefix}:Tenants:{tenant}:MaxEntryBytes must be positive.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
