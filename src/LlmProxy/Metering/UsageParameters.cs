using System.Globalization;
using LlmProxy.OpenAi;

namespace LlmProxy.Metering;

/// <summary>
/// The query string of the usage endpoints: <c>from</c> (inclusive) and <c>to</c> (exclusive) as ISO 8601 dates
/// (<c>2026-11-01</c>, midnight UTC), date-times with an offset or <c>Z</c>, or Unix seconds; <c>model</c>, <c>agent</c>,
/// <c>group_by</c>, and for admins <c>tenant</c>. Without dates, the last 30 days up to now.
/// </summary>
internal sealed record UsageParameters(DateTimeOffset From, DateTimeOffset To, string? Model, string? Agent, string? GroupBy, string? Tenant)
{
    public static readonly TimeSpan DefaultRange = TimeSpan.FromDays(30);

    public static bool TryParse(IQueryCollection query, DateTimeOffset now, TimeSpan maxRange, bool admin, out UsageParameters? parameters, out GatewayError? error)
    {
        parameters = null;
        DateTimeOffset? from = null, to = null;
        if (Single(query, "from", out var fromText, out error) && fromText is not null)
        {
            if (!TryParseTime(fromText, out var value))
            {
                error = BadTime("from", fromText);
                return false;
            }
            from = value;
        }
        if (error is not null)
        {
            return false;
        }
        if (Single(query, "to", out var toText, out error) && toText is not null)
        {
            if (!TryParseTime(toText, out var value))
            {
                error = BadTime("to", toText);
                return false;
            }
            to = value;
        }
        if (error is not null)
        {
            return false;
        }
        var end = to ?? (from is { } f && f + DefaultRange < now ? f + DefaultRange : now);
        var start = from ?? end - DefaultRange;
        if (start >= end)
        {
            error = GatewayErrors.BadRequest($"'from' ({Format(start)}) must be before 'to' ({Format(end)}).", "from", "invalid_value");
            return false;
        }
        if (end - start > maxRange)
        {
            error = GatewayErrors.BadRequest($"The range from 'from' to 'to' is longer than {maxRange.TotalDays:0.#} days; query it in parts.", "to", "invalid_value");
            return false;
        }

        if (!Single(query, "model", out var model, out error) || !Single(query, "agent", out var agent, out error)
            || !Single(query, "group_by", out var groupBy, out error) || !Single(query, "tenant", out var tenant, out error))
        {
            return false;
        }
        if (groupBy is not null)
        {
            groupBy = groupBy.Trim().ToLowerInvariant();
            var allowed = admin ? UsageGroupings.ForAdmins : UsageGroupings.ForTenants;
            if (!allowed.Contains(groupBy))
            {
                error = GatewayErrors.BadRequest($"'group_by' must be one of: {string.Join(", ", allowed)}.", "group_by", "invalid_value");
                return false;
            }
        }
        if (tenant is not null && !admin)
        {
            error = GatewayErrors.BadRequest("'tenant' is only accepted on the admin usage endpoint; a tenant key reads its own tenant's usage.", "tenant", "invalid_value");
            return false;
        }
        parameters = new UsageParameters(start, end, NullIfEmpty(model), NullIfEmpty(agent), groupBy, NullIfEmpty(tenant));
        return true;
    }

    /// <summary>Parses a time: Unix seconds, an ISO 8601 date (midnight UTC) or an ISO 8601 date-time (UTC unless it has an offset).</summary>
    public static bool TryParseTime(string text, out DateTimeOffset value)
    {
        text = text.Trim();
        if (text.Length > 0 && text.All(char.IsAsciiDigit) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            && seconds <= 253402300799)
        {
            value = DateTimeOffset.FromUnixTimeSeconds(seconds);
            return true;
        }
        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            value = new DateTimeOffset(date.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
            return true;
        }
        if (text.Contains('T', StringComparison.Ordinal)
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value))
        {
            return true;
        }
        value = default;
        return false;
    }

    public static string Format(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static GatewayError BadTime(string name, string text) => GatewayErrors.BadRequest(
        $"'{name}' ('{text}') is not a date (2026-11-01), a date-time with offset (2026-11-01T12:00:00Z) or Unix seconds.", name, "invalid_value");

    /// <summary>Reads an optional parameter given at most once.</summary>
    private static bool Single(IQueryCollection query, string name, out string? value, out GatewayError? error)
    {
        error = null;
        value = null;
        if (!query.TryGetValue(name, out var values) || values.Count == 0)
        {
            return true;
        }
        if (values.Count > 1)
        {
            error = GatewayErrors.BadRequest($"'{name}' is given more than once.", name, "invalid_value");
            return false;
        }
        value = values[0];
        return true;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
