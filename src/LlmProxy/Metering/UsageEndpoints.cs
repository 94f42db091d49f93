using System.Globalization;
using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Tenancy;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace LlmProxy.Metering;

/// <summary>
/// <c>GET /v1/usage</c>, <c>GET /v1/usage/estimate</c> (a tenant key reads its own tenant), <c>GET /admin/usage</c> and
/// <c>GET /admin/usage/estimate</c> (an admin key reads any tenant, or all of them), <c>GET /v1/pricing</c> and
/// <c>GET /v1/pricing/compare</c>.
/// </summary>
internal sealed partial class UsageEndpoints(
    IUsageStore store,
    PriceTableProvider prices,
    GatewayConfigurationProvider configuration,
    IOptions<MeteringOptions> options,
    TimeProvider time,
    ILogger<UsageEndpoints> logger)
{
    /// <summary>Days in the month an estimate projects to.</summary>
    public const int MonthDays = 30;

    public Task<IResult> TenantUsageAsync(HttpContext http) => UsageAsync(http, admin: false);

    public Task<IResult> AdminUsageAsync(HttpContext http) => UsageAsync(http, admin: true);

    public Task<IResult> TenantEstimateAsync(HttpContext http) => EstimateAsync(http, admin: false);

    public Task<IResult> AdminEstimateAsync(HttpContext http) => EstimateAsync(http, admin: true);

    private async Task<IResult> UsageAsync(HttpContext http, bool admin)
    {
        if (!UsageParameters.TryParse(http.Request.Query, time.GetUtcNow(), options.Value.MaxQueryRange, admin, out var parameters, out var error))
        {
            return new OpenAiErrorResult(error!);
        }
        var tenants = Tenants(http, parameters!, admin);
        var totals = new UsageAccumulator();
        var groups = new Dictionary<string, UsageAccumulator>(StringComparer.Ordinal);
        try
        {
            await foreach (var record in QueryAsync(tenants, parameters!, http.RequestAborted))
            {
                totals.Add(record);
                if (parameters!.GroupBy is { } groupBy)
                {
                    var key = UsageGroupings.GroupOf(record, groupBy);
                    if (!groups.TryGetValue(key, out var group))
                    {
                        groups[key] = group = new UsageAccumulator();
                    }
                    group.Add(record);
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
        {
            return StoreUnavailable(ex);
        }

        var data = groups.Select(g => g.Value.ToSummary(g.Key));
        data = parameters!.GroupBy == UsageGroupings.Day
            ? data.OrderBy(s => s.Group, StringComparer.Ordinal)
            : data.OrderByDescending(s => s.CostUsd).ThenByDescending(s => s.Requests).ThenBy(s => s.Group, StringComparer.Ordinal);
        var report = new UsageReport("usage.report", tenants.Count == 1 ? tenants[0] : null, parameters.From, parameters.To,
            parameters.Model, parameters.Agent, parameters.GroupBy, totals.ToSummary(), data.ToArray());
        return Results.Json(report, MeteringJsonContext.Default.UsageReport);
    }

    private async Task<IResult> EstimateAsync(HttpContext http, bool admin)
    {
        if (!UsageParameters.TryParse(http.Request.Query, time.GetUtcNow(), options.Value.MaxQueryRange, admin, out var parameters, out var error))
        {
            return new OpenAiErrorResult(error!);
        }
        if (parameters!.GroupBy is not null)
        {
            return new OpenAiErrorResult(GatewayErrors.BadRequest("'group_by' is not accepted by the estimate; use the usage endpoint.", "group_by", "invalid_value"));
        }
        var alternatives = ResolveModels(http, http.Request.Query["models"].ToString(), out error);
        if (error is not null)
        {
            return new OpenAiErrorResult(error);
        }

        var tenants = Tenants(http, parameters, admin);
        var observed = new UsageAccumulator();
        try
        {
            await foreach (var record in QueryAsync(tenants, parameters, http.RequestAborted))
            {
                observed.Add(record);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
        {
            return StoreUnavailable(ex);
        }

        var days = (decimal)(parameters.To - parameters.From).TotalDays;
        var factor = MonthDays / days;
        long Project(long value) => (long)Math.Round(value * factor, MidpointRounding.AwayFromZero);
        var monthly = new UsageProjection(Project(observed.Requests), Project(observed.PromptTokens), Project(observed.CompletionTokens),
            Project(observed.CachedTokens), CostCalculator.Normalize(Math.Round(observed.CostUsd * factor, 6)), Project(observed.UnpricedRequests));
        var costs = alternatives!
            .Select(p => Cost(p, monthly.PromptTokens, monthly.CompletionTokens, monthly.CachedTokens, round: 6))
            .OrderBy(c => c.CostUsd).ThenBy(c => c.Model, StringComparer.Ordinal)
            .ToArray();
        var estimate = new UsageEstimate("usage.estimate", tenants.Count == 1 ? tenants[0] : null, parameters.From, parameters.To,
            Math.Round((double)days, 4), MonthDays,
            new UsageProjection(observed.Requests, observed.PromptTokens, observed.CompletionTokens, observed.CachedTokens,
                CostCalculator.Normalize(observed.CostUsd), observed.UnpricedRequests),
            monthly, costs, costs.FirstOrDefault()?.Model);
        return Results.Json(estimate, MeteringJsonContext.Default.UsageEstimate);
    }

    /// <summary><c>GET /v1/pricing</c>: every price of the pricing file, marking those in effect today.</summary>
    public IResult ListPrices()
    {
        var table = prices.Current;
        var current = table.Current(time.GetUtcNow()).ToHashSet();
        var entries = table.Entries
            .Select(p => new PriceListEntry(p.Provider, p.Model, p.Aliases, p.InputPerMillion, p.CachedInputPerMillion, p.OutputPerMillion,
                p.EffectiveDate, current.Contains(p)))
            .ToArray();
        return Results.Json(new PriceList("list", "USD", "per_million_tokens", entries), MeteringJsonContext.Default.PriceList);
    }

    /// <summary>
    /// <c>GET /v1/pricing/compare?input_tokens=&amp;output_tokens=&amp;cached_tokens=&amp;models=a,b</c>: the cost of a token mix on
    /// each model (every model priced today when <c>models</c> is absent), cheapest first.
    /// </summary>
    public IResult Compare(HttpContext http)
    {
        var query = http.Request.Query;
        if (!TryTokens(query, "input_tokens", out var input, out var error)
            || !TryTokens(query, "output_tokens", out var output, out error)
            || !TryTokens(query, "cached_tokens", out var cached, out error))
        {
            return new OpenAiErrorResult(error!);
        }
        if (cached > input)
        {
            return new OpenAiErrorResult(GatewayErrors.BadRequest(
                "'cached_tokens' counts the input tokens read from the provider's prompt cache, so it cannot exceed 'input_tokens'.", "cached_tokens", "invalid_value"));
        }
        var models = ResolveModels(http, query["models"].ToString(), out error, everyPriceWhenEmpty: true);
        if (error is not null)
        {
            return new OpenAiErrorResult(error);
        }
        var costs = models!
            .Select(p => Cost(p, input, output, cached, round: null))
            .OrderBy(c => c.CostUsd).ThenBy(c => c.Model, StringComparer.Ordinal)
            .ToArray();
        return Results.Json(new PriceComparison("pricing.comparison", input, output, cached, costs, costs.FirstOrDefault()?.Model),
            MeteringJsonContext.Default.PriceComparison);
    }

    private static ModelCost Cost(ModelPrice price, long input, long output, long cached, int? round)
    {
        var cost = CostCalculator.Compute(price, input, output, cached);
        if (round is { } digits)
        {
            cost = Math.Round(cost, digits);
        }
        return new ModelCost(price.Model, price.Provider, price.InputPerMillion, price.OutputPerMillion, price.CachedInputPerMillion,
            price.EffectiveDate, CostCalculator.Normalize(cost));
    }

    /// <summary>
    /// Prices of a comma-separated list of names: price-table model ids or aliases (<c>provider/model</c> to pick a provider),
    /// or model names of this gateway (priced as their first deployment).
    /// </summary>
    private IReadOnlyList<ModelPrice>? ResolveModels(HttpContext http, string list, out GatewayError? error, bool everyPriceWhenEmpty = false)
    {
        error = null;
        var now = time.GetUtcNow();
        var table = prices.Current;
        var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToArray();
        if (names.Length == 0)
        {
            return everyPriceWhenEmpty ? table.Current(now) : [];
        }
        if (names.Length > 100)
        {
            error = GatewayErrors.BadRequest("'models' lists more than 100 models.", "models", "invalid_value");
            return null;
        }
        var tenant = http.Features.Get<ITenantFeature>()?.Identity.Tenant;
        var found = new List<ModelPrice>();
        var unknown = new List<string>();
        foreach (var name in names)
        {
            var price = table.FindByName(name, now);
            if (price is null && configuration.Current.Routes.TryGetValue(name, out var route) && (tenant is null || tenant.Allows(name))
                && route.Deployments.FirstOrDefault() is { } deployment)
            {
                price = table.Find(deployment.ProviderName, deployment.UpstreamModel, name, now);
            }
            if (price is null)
            {
                unknown.Add(name);
            }
            else if (!found.Contains(price))
            {
                found.Add(price);
            }
        }
        if (unknown.Count > 0)
        {
            error = GatewayErrors.BadRequest($"No price for: {string.Join(", ", unknown)}. GET /v1/pricing lists the priced models.", "models", "model_not_priced");
            return null;
        }
        return found;
    }

    private static bool TryTokens(IQueryCollection query, string name, out long value, out GatewayError? error)
    {
        value = 0;
        error = null;
        if (!query.TryGetValue(name, out var values) || values.Count == 0 || string.IsNullOrWhiteSpace(values[0]))
        {
            return true;
        }
        if (values.Count > 1 || !long.TryParse(values[0], NumberStyles.None, CultureInfo.InvariantCulture, out value) || value > 1_000_000_000_000)
        {
            error = GatewayErrors.BadRequest($"'{name}' must be a whole number of tokens between 0 and 10^12.", name, "invalid_value");
            return false;
        }
        return true;
    }

    /// <summary>The tenants a request may read: its own for a tenant key; the one named, or every configured tenant, for an admin.</summary>
    private IReadOnlyList<string> Tenants(HttpContext http, UsageParameters parameters, bool admin)
    {
        if (!admin)
        {
            return [http.Features.GetRequiredFeature<ITenantFeature>().Identity.Tenant.Name];
        }
        return parameters.Tenant is { } tenant
            ? [tenant]
            : configuration.Current.Options.Tenants.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    private async IAsyncEnumerable<UsageRecord> QueryAsync(IReadOnlyList<string> tenants, UsageParameters parameters,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var tenant in tenants)
        {
            var query = new UsageQuery(tenant, parameters.From, parameters.To) { Agent = parameters.Agent, Model = parameters.Model };
            await foreach (var record in store.QueryAsync(query, cancellationToken))
            {
                yield return record;
            }
        }
    }

    private OpenAiErrorResult StoreUnavailable(Exception ex)
    {
        LogQueryFailed(logger, store.Name, ex);
        return new OpenAiErrorResult(new GatewayError(StatusCodes.Status503ServiceUnavailable, new OpenAiError(
            "The usage store is not available right now; usage is still being recorded. Try again later.",
            GatewayErrors.ServerError, null, "usage_store_unavailable")));
    }

    [LoggerMessage(EventId = 7501, Level = LogLevel.Error, Message = "Usage API: query of the {Store} usage store failed")]
    private static partial void LogQueryFailed(ILogger logger, string store, Exception exception);
}
