using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;
using LlmProxy.Simulator.Control;
using LlmProxy.Simulator.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LlmProxy.Simulator.Faults;

/// <summary>
/// <c>GET/POST/DELETE /_sim/faults</c>: <see cref="SimulatorFaults"/> for tests that run the simulator out of process.
/// The JSON shapes are documented in README.md.
/// </summary>
internal static class FaultControlEndpoints
{
    public static void MapFaultsControl(this IEndpointRouteBuilder endpoints, SimulatorFaults faults, IReadOnlySet<int> controlPorts)
    {
        endpoints.MapGet(ControlPaths.Faults, context => WriteStateAsync(context, faults));

        endpoints.MapPost(ControlPaths.Faults, async context =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            if (!FaultDocument.TryParse(body.ToArray(), out var fault, out var count, out var error))
            {
                await error.WriteResponseAsync(context.Response);
                return;
            }

            if (fault.Kind == SimulatorFaultKind.Refuse && !controlPorts.Contains(context.Connection.LocalPort))
            {
                // Armed through a listener it closes, it could never be cleared over HTTP again.
                await FaultDocument.Invalid("kind", "Arm 'refuse' through a control URL (--control-urls), which it leaves open.").WriteResponseAsync(context.Response);
                return;
            }

            faults.Set(fault, count);
            await WriteStateAsync(context, faults);
        });

        endpoints.MapDelete(ControlPaths.Faults, context =>
        {
            faults.Clear();
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            return Task.CompletedTask;
        });
    }

    private static Task WriteStateAsync(HttpContext context, SimulatorFaults faults)
    {
        var fault = faults.Current;
        var state = new FaultStateDocument(fault is null ? null : FaultDocument.From(fault), fault is null ? null : faults.Remaining);
        return JsonResponse.WriteAsync(context, state, FaultJsonContext.Wire.FaultStateDocument);
    }
}

/// <summary>The JSON of <c>GET /_sim/faults</c>: the armed fault (null when none) and how many more requests it applies to (null: until cleared).</summary>
internal sealed record FaultStateDocument(FaultDocument? Fault, int? Remaining);

/// <summary>A fault on the wire: <c>{"kind":"status","statusCode":429,"retryAfterSeconds":2}</c>, <c>{"kind":"midStreamAbort","afterChunks":3}</c>, ...</summary>
internal sealed record FaultDocument(string Kind, int? StatusCode = null, int? RetryAfterSeconds = null, int? AfterChunks = null)
{
    public static FaultDocument From(SimulatorFault fault) => fault.Kind switch
    {
        SimulatorFaultKind.Status => new(KindName(fault.Kind), fault.StatusCode, fault.RetryAfterSeconds),
        SimulatorFaultKind.MidStreamError when fault.StatusCode != 0 => new(KindName(fault.Kind), fault.StatusCode, AfterChunks: fault.AfterChunks),
        SimulatorFaultKind.MidStreamAbort or SimulatorFaultKind.MidStreamError => new(KindName(fault.Kind), AfterChunks: fault.AfterChunks),
        _ => new(KindName(fault.Kind)),
    };

    /// <summary>camelCase, as every other name of the control surface.</summary>
    public static string KindName(SimulatorFaultKind kind) => JsonNamingPolicy.CamelCase.ConvertName(kind.ToString());

    /// <summary>
    /// Reads <c>{"kind", "statusCode"?, "retryAfterSeconds"?, "afterChunks"?, "count"?}</c>. Parsed by hand rather than
    /// deserialized so that each mistake is answered with the field it concerns.
    /// </summary>
    public static bool TryParse(byte[] body, [NotNullWhen(true)] out SimulatorFault? fault, out int? count, [NotNullWhen(false)] out OpenAiError? error)
    {
        fault = null;
        count = null;
        error = null;
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = Invalid(null, "The body must be a JSON object describing a fault.");
                return false;
            }

            if (!root.TryGetProperty("kind", out var kindElement) || kindElement.ValueKind != JsonValueKind.String
                || !Enum.TryParse<SimulatorFaultKind>(kindElement.GetString(), ignoreCase: true, out var kind)
                || !Enum.IsDefined(kind))
            {
                error = Invalid("kind", "'kind' must be one of: status, reset, hang, midStreamAbort, midStreamError, refuse.");
                return false;
            }

            if (!TryReadInt(root, "count", out count, out error)
                || !TryReadInt(root, "statusCode", out var statusCode, out error)
                || !TryReadInt(root, "retryAfterSeconds", out var retryAfter, out error)
                || !TryReadInt(root, "afterChunks", out var afterChunks, out error))
            {
                return false;
            }

            if (count is < 1)
            {
                error = Invalid("count", "'count' must be at least 1, or absent for a fault that lasts until cleared.");
                return false;
            }

            switch (kind)
            {
                case SimulatorFaultKind.Status when statusCode is null:
                    error = Invalid("statusCode", "A 'status' fault needs 'statusCode' (400-599).");
                    return false;
                case SimulatorFaultKind.Status:
                    fault = SimulatorFault.Status(statusCode.Value, retryAfter);
                    break;
                case SimulatorFaultKind.Reset:
                    fault = SimulatorFault.Reset();
                    break;
                case SimulatorFaultKind.Hang:
                    fault = SimulatorFault.Hang();
                    break;
                case SimulatorFaultKind.MidStreamAbort:
                    fault = SimulatorFault.MidStreamAbort(afterChunks ?? 0);
                    break;
                case SimulatorFaultKind.MidStreamError:
                    fault = SimulatorFault.MidStreamError(afterChunks ?? 0, statusCode);
                    break;
                case SimulatorFaultKind.Refuse when count is not null:
                    error = Invalid("count", "A 'refuse' fault lasts until cleared; it takes no 'count'.");
                    return false;
                case SimulatorFaultKind.Refuse:
                    fault = SimulatorFault.Refuse();
                    break;
            }

            return fault is not null;
        }
        catch (JsonException)
        {
            error = Invalid(null, "The body is not valid JSON.");
            return false;
        }
        catch (ArgumentOutOfRangeException exception)
        {
            error = Invalid(exception.ParamName, exception.Message);
            return false;
        }
    }

    private static bool TryReadInt(JsonElement root, string name, out int? value, [NotNullWhen(false)] out OpenAiError? error)
    {
        value = null;
        error = null;
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (element.ValueKind == JsonValueKind.Number && element.TryGetInt32(out var number))
        {
            value = number;
            return true;
        }

        error = Invalid(name, $"'{name}' must be an integer.");
        return false;
    }

    internal static OpenAiError Invalid(string? param, string message) =>
        new(StatusCodes.Status400BadRequest, message, OpenAiError.InvalidRequestType, param);
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(FaultStateDocument))]
internal sealed partial class FaultJsonContext : JsonSerializerContext
{
    /// <summary>The generated metadata with the simulator's wire encoder (attributes cannot set an encoder).</summary>
    public static FaultJsonContext Wire { get; } = new(WireJson.ControlOptions(indented: false));
}
