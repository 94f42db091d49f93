using LlmProxy.Configuration;
using LlmProxy.Hosting;
using LlmProxy.Metering;

if (args.Length > 0 && args[0] == HashKeyCommand.Name)
{
    return HashKeyCommand.Run(args[1..], Console.In, Console.Out, Console.Error);
}

if (args.Length > 0 && args[0] == CreateUsageTableCommand.Name)
{
    var commandBuilder = WebApplication.CreateBuilder(args[1..]);
    commandBuilder.AddLlmProxyConfigurationFiles();
    return await CreateUsageTableCommand.RunAsync(commandBuilder.Configuration, commandBuilder.Environment.ContentRootPath, Console.Out, Console.Error);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddLlmProxyConfigurationFiles();
builder.Services.AddLlmProxy(builder.Configuration);

var app = builder.Build();
try
{
    app.UseLlmProxy();
}
catch (GatewayConfigurationException ex)
{
    Console.Error.WriteLine(ex.Message);
    return 1;
}
await app.RunAsync();
return 0;
