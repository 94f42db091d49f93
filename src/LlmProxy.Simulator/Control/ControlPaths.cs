namespace LlmProxy.Simulator.Control;

/// <summary>The simulator's own control surface, kept apart from the OpenAI API it simulates.</summary>
internal static class ControlPaths
{
    public const string Root = "/_sim";
    public const string Faults = "/_sim/faults";
    public const string Requests = "/_sim/requests";
}
