using Microsoft.Extensions.Logging;

namespace KServe.Node.CacheController.Tests.Integration;

/// <summary>Writes the controller's log to a file when CACHECTL_TEST_LOGFILE is set (diagnosing a failing test).</summary>
internal sealed class FileLog(string path) : ILoggerProvider
{
    private readonly Lock _lock = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private void Write(string line)
    {
        lock (_lock)
        {
            File.AppendAllText(path, line + Environment.NewLine);
        }
    }

    private sealed class Logger(FileLog owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Write($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)} {exception}");
    }
}
