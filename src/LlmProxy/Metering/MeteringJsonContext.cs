using System.Text.Json.Serialization;

namespace LlmProxy.Metering;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(UsageRecord))]
[JsonSerializable(typeof(UsageReport))]
[JsonSerializable(typeof(UsageEstimate))]
[JsonSerializable(typeof(PriceList))]
[JsonSerializable(typeof(PriceComparison))]
internal sealed partial class MeteringJsonContext : JsonSerializerContext;
