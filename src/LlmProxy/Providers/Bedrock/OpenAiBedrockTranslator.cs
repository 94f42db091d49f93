using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using LlmProxy.Providers.Bedrock.Wire;
using LlmProxy.Routing;

namespace LlmProxy.Providers.Bedrock;

/// <summary>
/// OpenAI chat completions to Bedrock Converse / ConverseStream, for one upstream attempt. The request goes to
/// <c>/model/{modelId}/converse</c> (or <c>converse-stream</c>) with the deployment's model id or inference
/// profile ARN escaped into the path; answers come back in OpenAI's shape under the client's model name.
/// </summary>
internal sealed class OpenAiBedrockTranslator(ChatRequest request, Deployment deployment, TimeProvider time) : IChatTranslator
{
    public const string EventStreamContentType = "application/vnd.amazon.eventstream";

    public UpstreamRequest TranslateRequest()
    {
        var converse = new ConverseRequestBuilder(request, BedrockSettings.GetDropUnsupportedParams(deployment.Options)).Build();
        var body = JsonSerializer.SerializeToUtf8Bytes(converse, BedrockJsonContext.Default.ConverseRequest);
        var operation = request.Stream ? "converse-stream" : "converse";
        return new UpstreamRequest($"/model/{Uri.EscapeDataString(deployment.UpstreamModel)}/{operation}", body)
        {
            Accept = request.Stream ? EventStreamContentType : "application/json",
        };
    }

    public TranslatedResponse TranslateResponse(ReadOnlySpan<byte> upstreamBody)
    {
        ConverseResponse? response;
        try
        {
            response = JsonSerializer.Deserialize(upstreamBody, BedrockJsonContext.Default.ConverseResponse);
        }
        catch (JsonException)
        {
            response = null;
        }
        if (response?.Output?.Message?.Content is not { } content)
        {
            throw new UpstreamProtocolException($"Deployment '{deployment.Id}' returned a response that is not a Converse response.");
        }

        string? text = null;
        JsonArray? toolCalls = null;
        foreach (var block in content)
        {
            if (block.Text is { } fragment)
            {
                text = text is null ? fragment : text + fragment;
            }
            else if (block.ToolUse is { } toolUse)
            {
                toolCalls ??= [];
                toolCalls.Add(new JsonObject
                {
                    ["id"] = toolUse.ToolUseId,
                    ["type"] = "function",
                    ["function"] = new JsonObject
                    {
                        ["name"] = toolUse.Name,
                        ["arguments"] = (toolUse.Input ?? new JsonObject()).ToJsonString(),
                    },
                });
            }
            // Other blocks (reasoning, citations, ...) have no place in a chat.completion message.
        }

        var message = new JsonObject
        {
            ["role"] = "assistant",
            ["content"] = text ?? (toolCalls is null ? "" : null),
            ["refusal"] = null,
        };
        if (toolCalls is not null)
        {
            message["tool_calls"] = toolCalls;
        }
        var usage = response.Usage is { } bedrockUsage ? ConverseResponseMapping.ToTokenUsage(bedrockUsage) : null;
        var completion = new JsonObject
        {
            ["id"] = ConverseResponseMapping.NewCompletionId(),
            ["object"] = "chat.completion",
            ["created"] = time.GetUtcNow().ToUnixTimeSeconds(),
            ["model"] = request.Model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = message,
                ["logprobs"] = null,
                ["finish_reason"] = ConverseResponseMapping.ToFinishReason(response.StopReason),
            }),
        };
        if (usage is not null)
        {
            completion["usage"] = ConverseResponseMapping.ToJson(usage);
        }
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            completion.WriteTo(writer);
        }
        return new TranslatedResponse(buffer.WrittenSpan.ToArray(), usage);
    }

    public UpstreamFailure TranslateError(HttpResponseMessage response, ReadOnlySpan<byte> upstreamBody) =>
        BedrockErrors.FromResponse(response, upstreamBody, deployment.Id, request.Model);

    public IChatStreamTranslator CreateStreamTranslator() => new ConverseStreamTranslator(request, deployment.Id, time);
}
