using KServe.Node.LlmServer;
using KServe.Node.LlmServer.Hosting;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(ServerCommandLine.Usage());
    return 0;
}
try
{
    await using var app = LlmServerApp.Create(args);
    await app.RunAsync();
    return 0;
}
catch (Exception e) when (e is FormatException or ModelPathException or Microsoft.Extensions.Options.OptionsValidationException)
{
    await Console.Error.WriteLineAsync("llm-server: " + e.Message);
    return 2;
}
