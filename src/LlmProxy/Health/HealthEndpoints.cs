using System.Text.Json;
using LlmProxy.Hosting;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LlmProxy.Health;

/// <summary>
/// <c>/healthz</c> (the process is alive; no detail, served on every listener) and <c>/readyz</c> (configuration valid,
/// required stores reachable, one entry per check: served on the management listener only when there is one).
/// </summary>
public static class HealthEndpoints
{
    /// <summary>Tag of the health checks that decide readiness. Features with a required store add a check with this tag.</summary>
    public const string ReadinessTag = "ready";

    public static IEndpointRouteBuilder MapLlmProxyHealth(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync });
        endpoints.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadinessTag),
            ResponseWriter = WriteAsync,
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                // A degraded gateway still serves the models it can; keep it in the load balancer.
                [HealthStatus.Degraded] = StatusCodes.Status200OK,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
        }).RequireManagementListener();
        return endpoints;
    }

    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("status", report.Status.ToString().ToLowerInvariant());
            writer.WriteStartObject("checks");
            foreach (var (name, entry) in report.Entries)
            {
                writer.WriteStartObject(name);
                writer.WriteString("status", entry.Status.ToString().ToLowerInvariant());
                writer.WriteString("description", entry.Description);
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return context.Response.Body.WriteAsync(buffer.ToArray()).AsTask();
    }
}
