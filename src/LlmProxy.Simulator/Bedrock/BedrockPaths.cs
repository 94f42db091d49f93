using System.Diagnostics.CodeAnalysis;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>The Bedrock Runtime operations the simulator answers.</summary>
internal enum BedrockOperation
{
    /// <summary><c>POST /model/{modelId}/converse</c>.</summary>
    Converse,

    /// <summary><c>POST /model/{modelId}/converse-stream</c>.</summary>
    ConverseStream,
}

/// <summary>
/// Bedrock's paths, read from the request target exactly as it arrived (<see cref="Http.RawTarget"/>). Model ids such as
/// inference-profile ARNs contain <c>:</c> and <c>/</c>, which clients percent-encode; the server's decoded path keeps
/// <c>%2F</c> but decodes the rest, so both the model id and the SigV4 canonical URI are taken from the raw target instead.
/// </summary>
internal static class BedrockPaths
{
    public const string Root = "/model";

    private const string Prefix = Root + "/";

    /// <summary>Reads the operation and the decoded model id from a raw path such as <c>/model/arn%3Aaws%3A...%2Fx/converse</c>.</summary>
    public static bool TryParse(string rawPath, [NotNullWhen(true)] out string? modelId, out BedrockOperation operation)
    {
        modelId = null;
        operation = default;
        var last = rawPath.LastIndexOf('/');
        if (!rawPath.StartsWith(Prefix, StringComparison.Ordinal) || last <= Prefix.Length)
        {
            return false;
        }

        switch (rawPath[(last + 1)..])
        {
            case "converse":
                operation = BedrockOperation.Converse;
                break;
            case "converse-stream":
                operation = BedrockOperation.ConverseStream;
                break;
            default:
                return false;
        }

        modelId = Uri.UnescapeDataString(rawPath[Prefix.Length..last]);
        return modelId.Length > 0;
    }
}
