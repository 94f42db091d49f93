using System.Globalization;

namespace LlmProxy.Simulator.Hosting;

/// <summary>
/// The standalone simulator's command line: <c>--urls</c>, <c>--control-urls</c>, <c>--latency-ms</c>, <c>--chunk-delay-ms</c>, <c>--api-key</c>, <c>--models</c>,
/// <c>--bedrock-credentials</c>, <c>--bedrock-unsigned</c>.
/// </summary>
internal sealed record CommandLine(string[] Urls, SimulatorOptions Options, bool ShowHelp)
{
    public const string DefaultUrl = "http://127.0.0.1:8091";

    /// <summary>Listeners that a refuse fault leaves open (<c>--control-urls</c>); none by default.</summary>
    public string[] ControlUrls { get; init; } = [];

    public const string Usage = """
        LlmProxy.Simulator: a fake OpenAI-compatible upstream for tests and quick starts.

        Options:
          --urls <url[;url]>      Where to listen (default http://127.0.0.1:8091). Keep it on loopback.
          --control-urls <url[;url]>
                                  More listeners, with explicit ports, that a "refuse" fault leaves
                                  open, so that POST/DELETE /_sim/faults can still reach it.
          --latency-ms <n>        Delay before the response headers / the first streamed chunk (default 0).
          --chunk-delay-ms <n>    Delay between streamed chunks (default 0).
          --api-key <key>         Require "Authorization: Bearer <key>" (default: any key is accepted).
          --models <a,b,...>      Models listed by GET /v1/models (default gpt-4o-mini,gpt-4o).
          --bedrock-credentials <id:secret[,id:secret]>
                                  AWS keys whose SigV4 signatures the Bedrock endpoints accept
                                  (default AKIDSIMULATOR:simulator-secret).
          --bedrock-unsigned      Accept Bedrock requests without checking their signature.
          --help                  Show this text.
        """;

    /// <summary>Parses <paramref name="args"/>; throws <see cref="FormatException"/> with a message for the user on a bad argument.</summary>
    public static CommandLine Parse(IReadOnlyList<string> args)
    {
        var options = new SimulatorOptions();
        var urls = new[] { DefaultUrl };
        string[] controlUrls = [];
        for (var i = 0; i < args.Count; i++)
        {
            var (name, inlineValue) = SplitArgument(args[i]);
            switch (name)
            {
                case "--help" or "-h" or "-?":
                    return new CommandLine(urls, options, ShowHelp: true);
                case "--urls":
                    urls = Value().Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    break;
                case "--control-urls":
                    controlUrls = Value().Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    break;
                case "--latency-ms":
                    options.Latency = Milliseconds();
                    break;
                case "--chunk-delay-ms":
                    options.ChunkDelay = Milliseconds();
                    break;
                case "--api-key":
                    options.ExpectedApiKey = Value();
                    break;
                case "--models":
                    options.Models.Clear();
                    foreach (var model in Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        options.Models.Add(model);
                    }

                    break;
                case "--bedrock-credentials":
                    options.BedrockCredentials.Clear();
                    foreach (var pair in Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        var colon = pair.IndexOf(':', StringComparison.Ordinal);
                        if (colon <= 0 || colon == pair.Length - 1)
                        {
                            throw new FormatException($"{name} needs access-key-id:secret pairs, not '{pair}'.");
                        }

                        options.BedrockCredentials[pair[..colon]] = pair[(colon + 1)..];
                    }

                    break;
                case "--bedrock-unsigned":
                    options.BedrockRequireSignature = false;
                    break;
                default:
                    throw new FormatException($"Unknown argument '{args[i]}'. Use --help to list the options.");
            }

            string Value()
            {
                if (inlineValue is not null)
                {
                    return inlineValue;
                }

                if (i + 1 >= args.Count)
                {
                    throw new FormatException($"{name} needs a value.");
                }

                return args[++i];
            }

            TimeSpan Milliseconds()
            {
                var text = Value();
                if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
                {
                    throw new FormatException($"{name} needs a whole number of milliseconds, not '{text}'.");
                }

                return TimeSpan.FromMilliseconds(ms);
            }
        }

        if (urls.Length == 0)
        {
            throw new FormatException("--urls needs at least one URL.");
        }

        return new CommandLine(urls, options, ShowHelp: false) { ControlUrls = controlUrls };
    }

    /// <summary>Accepts both <c>--name value</c> and <c>--name=value</c>.</summary>
    private static (string Name, string? Value) SplitArgument(string argument)
    {
        var equals = argument.IndexOf('=', StringComparison.Ordinal);
        return argument.StartsWith("--", StringComparison.Ordinal) && equals > 0
            ? (argument[..equals], argument[(equals + 1)..])
            : (argument, null);
    }
}
