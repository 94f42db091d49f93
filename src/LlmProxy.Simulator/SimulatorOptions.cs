namespace LlmProxy.Simulator;

/// <summary>
/// How a simulator instance behaves. The values are read once when the server starts
/// (<see cref="SimulatorApp.Build"/> takes a snapshot), so a test that needs different timings
/// starts another server instead of racing a running one; faults are the runtime knob.
/// </summary>
public sealed class SimulatorOptions
{
    /// <summary>
    /// Added latency before the response headers of a non-streaming reply, or before the first chunk
    /// of a streamed reply (the headers of a stream go out at once, as OpenAI's do). The default is zero.
    /// </summary>
    public TimeSpan Latency { get; set; }

    /// <summary>Delay between two streamed events. The default is zero.</summary>
    public TimeSpan ChunkDelay { get; set; }

    /// <summary>
    /// When set, every <c>/v1/</c> request must carry <c>Authorization: Bearer &lt;ExpectedApiKey&gt;</c>
    /// or it gets OpenAI's 401. The default is null: any key, or none, is accepted.
    /// </summary>
    public string? ExpectedApiKey { get; set; }

    /// <summary>
    /// Models listed by <c>GET /v1/models</c>. Chat completions accept any model name anyway,
    /// because gateways route on names the simulator cannot know in advance.
    /// The default is <c>gpt-4o-mini</c> and <c>gpt-4o</c>.
    /// </summary>
    public IList<string> Models { get; } = new List<string> { "gpt-4o-mini", "gpt-4o" };

    /// <summary>How many recent requests <see cref="SimulatorRecorder"/> keeps. The default is 100.</summary>
    public int RecordedRequestLimit { get; set; } = SimulatorRecorder.DefaultLimit;

    /// <summary>The access key id of the default Bedrock identity: <c>AKIDSIMULATOR</c>.</summary>
    public const string DefaultBedrockAccessKeyId = "AKIDSIMULATOR";

    /// <summary>The secret access key of the default Bedrock identity: <c>simulator-secret</c>.</summary>
    public const string DefaultBedrockSecretAccessKey = "simulator-secret";

    /// <summary>
    /// The AWS identities the Bedrock endpoints (<c>/model/...</c>) accept, access key id to secret access key:
    /// a request must be signed with SigV4 (service <c>bedrock</c>, any region) by one of them. The default holds
    /// one pair, <see cref="DefaultBedrockAccessKeyId"/> / <see cref="DefaultBedrockSecretAccessKey"/>; clear it first
    /// to accept only your own.
    /// </summary>
    public IDictionary<string, string> BedrockCredentials { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [DefaultBedrockAccessKeyId] = DefaultBedrockSecretAccessKey,
    };

    /// <summary>
    /// Whether Bedrock requests must carry a valid SigV4 signature. When false, the <c>Authorization</c> header is not
    /// looked at. The default is true, so that a gateway's signing is tested on every request.
    /// </summary>
    public bool BedrockRequireSignature { get; set; } = true;

    internal SimulatorOptions Snapshot()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Latency, TimeSpan.Zero, nameof(Latency));
        ArgumentOutOfRangeException.ThrowIfLessThan(ChunkDelay, TimeSpan.Zero, nameof(ChunkDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(RecordedRequestLimit, 1, nameof(RecordedRequestLimit));

        var copy = new SimulatorOptions
        {
            Latency = Latency,
            ChunkDelay = ChunkDelay,
            ExpectedApiKey = string.IsNullOrEmpty(ExpectedApiKey) ? null : ExpectedApiKey,
            RecordedRequestLimit = RecordedRequestLimit,
            BedrockRequireSignature = BedrockRequireSignature,
        };
        copy.Models.Clear();
        foreach (var model in Models.Where(m => !string.IsNullOrWhiteSpace(m)).Distinct(StringComparer.Ordinal))
        {
            copy.Models.Add(model);
        }

        copy.BedrockCredentials.Clear();
        foreach (var (accessKeyId, secret) in BedrockCredentials)
        {
            if (string.IsNullOrEmpty(accessKeyId) || string.IsNullOrEmpty(secret))
            {
                throw new ArgumentException("Bedrock credentials need a non-empty access key id and secret.", nameof(BedrockCredentials));
            }

            copy.BedrockCredentials[accessKeyId] = secret;
        }

        return copy;
    }
}
