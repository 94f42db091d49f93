namespace LlmProxy.Simulator.OpenAi;

/// <summary>Where the simulated OpenAI API lives, apart from the Bedrock endpoints and the control surface.</summary>
internal static class OpenAiPaths
{
    public const string Root = "/v1";
}
