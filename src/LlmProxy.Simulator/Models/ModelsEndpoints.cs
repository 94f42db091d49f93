using System.Buffers;
using System.Text.Json;
using LlmProxy.Simulator.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LlmProxy.Simulator.Models;

/// <summary><c>GET /v1/models</c> (<c>ListModelsResponse</c>) and <c>GET /v1/models/{id}</c> (<c>Model</c>, or 404 <c>model_not_found</c>).</summary>
internal static class ModelsEndpoints
{
    /// <summary>A fixed creation time, so listings are byte-for-byte stable across runs.</summary>
    internal const long CreatedUnixSeconds = 1_700_000_000;

    internal const string Owner = "llmproxy-simulator";

    public static void MapModels(this IEndpointRouteBuilder endpoints, IReadOnlyList<string> models)
    {
        endpoints.MapGet("/v1/models", context =>
        {
            var body = Write(writer =>
            {
                writer.WriteStartObject();
                writer.WriteString("object", "list");
                writer.WriteStartArray("data");
                foreach (var model in models)
                {
                    WriteModel(writer, model);
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            });
            return WriteJsonAsync(context, body);
        });

        endpoints.MapGet("/v1/models/{id}", context =>
        {
            var id = (string)context.Request.RouteValues["id"]!;
            if (!models.Contains(id, StringComparer.Ordinal))
            {
                return new OpenAiError(
                    StatusCodes.Status404NotFound,
                    $"The model '{id}' does not exist",
                    OpenAiError.InvalidRequestType,
                    "model",
                    "model_not_found").WriteResponseAsync(context.Response);
            }

            return WriteJsonAsync(context, Write(writer => WriteModel(writer, id)));
        });
    }

    private static void WriteModel(Utf8JsonWriter writer, string id)
    {
        writer.WriteStartObject();
        writer.WriteString("id", id);
        writer.WriteString("object", "model");
        writer.WriteNumber("created", CreatedUnixSeconds);
        writer.WriteString("owned_by", Owner);
        writer.WriteEndObject();
    }

    private static byte[] Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WireJson.WriterOptions))
        {
            write(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static Task WriteJsonAsync(HttpContext context, byte[] body)
    {
        OpenAiHeaders.Apply(context.Response);
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = body.Length;
        return context.Response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    }
}
