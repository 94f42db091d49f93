using LlmProxy.Simulator;
using LlmProxy.Simulator.Hosting;
using Microsoft.Extensions.Logging;

CommandLine commandLine;
try
{
    commandLine = CommandLine.Parse(args);
}
catch (FormatException exception)
{
    Console.Error.WriteLine(exception.Message);
    return 2;
}

if (commandLine.ShowHelp)
{
    Console.WriteLine(CommandLine.Usage);
    return 0;
}

var app = SimulatorApp.Build(commandLine.Options, commandLine.Urls, logging => logging
    .AddSimpleConsole(console => console.SingleLine = true)
    .SetMinimumLevel(LogLevel.Information)
    .AddFilter("Microsoft.AspNetCore", LogLevel.Warning)
    .AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information), commandLine.ControlUrls);
await app.RunAsync();
return 0;
