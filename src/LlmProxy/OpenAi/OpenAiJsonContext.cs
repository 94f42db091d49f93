using System.Text.Json.Serialization;

namespace LlmProxy.OpenAi;

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(OpenAiErrorEnvelope))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelObject))]
internal sealed partial class OpenAiJsonContext : JsonSerializerContext;
