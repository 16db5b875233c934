using BenchmarkDotNet.Running;

// Micro-benchmarks: `dotnet run -c Release --project benchmarks/KServe.Node.Benchmarks -- --filter '*'`.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
