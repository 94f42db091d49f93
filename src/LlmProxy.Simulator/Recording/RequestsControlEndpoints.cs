using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using LlmProxy.Simulator.Control;
using LlmProxy.Simulator.OpenAi;

namespace LlmProxy.Simulator.Recording;

/// <summary><c>GET /_sim/requests</c> and <c>DELETE /_sim/requests</c>: the recorder for tests that run the simulator out of process.</summary>
internal static class RequestsControlEndpoints
{
    public static void MapRequestsControl(this IEndpointRouteBuilder endpoints, SimulatorRecorder recorder)
    {
        endpoints.MapGet(ControlPaths.Requests, context =>
        {
            var snapshot = new RecordedRequestsDocument(recorder.Count, recorder.Recent);
            return JsonResponse.WriteAsync(context, snapshot, RecordingJsonContext.Wire.RecordedRequestsDocument);
        });

        endpoints.MapDelete(ControlPaths.Requests, context =>
        {
            recorder.Reset();
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            return Task.CompletedTask;
        });
    }
}

/// <summary>The JSON of <c>GET /_sim/requests</c>.</summary>
internal sealed record RecordedRequestsDocument(int Count, IReadOnlyList<RecordedRequest> Requests);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
[JsonSerializable(typeof(RecordedRequestsDocument))]
internal sealed partial class RecordingJsonContext : JsonSerializerContext
{
    /// <summary>The generated metadata with the simulator's wire encoder (attributes cannot set an encoder).</summary>
    public static RecordingJsonContext Wire { get; } = new(WireJson.ControlOptions(indented: true));
}
