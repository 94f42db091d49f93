using System.Text.Json.Serialization;

namespace LlmProxy.Metering;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(UsageRecord))]
internal sealed partial class MeteringJsonContext : JsonSerializerContext;
