using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KServe.Node.Llama.Native;

/// <summary>Raised when the native libraries, a backend, the model or the context cannot be loaded.</summary>
public sealed class LlamaLoadException : Exception
{
    public LlamaLoadException() { }
    public LlamaLoadException(string message) : base(message) { }
    public LlamaLoadException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// Loads llama.cpp once per process from one folder: resolves the versioned library names (DllImport("llama")
/// never tries <c>libllama.v0.5.0.so</c>), loads the ggml backends from that folder (ggml only looks beside the
/// dotnet host otherwise), routes native logs to ILogger, and fails fast naming what is missing.
/// </summary>
internal static unsafe class LlamaNative
{
    /// <summary>Environment variable naming the folder with the native libraries.</summary>
    public const string DirectoryVariable = "KSERVE_NODE_NATIVE_DIR";

    private static readonly Lock Gate = new();
    private static string? _loadedDir;
    private static readonly Dictionary<string, IntPtr> Handles = new(StringComparer.Ordinal);
    private static volatile ILogger _logger = NullLogger.Instance;

    [ThreadStatic] private static StringBuilder? _pendingLine;
    [ThreadStatic] private static GgmlLogLevel _pendingLevel;

    public static string? LoadedDirectory => _loadedDir;

    /// <summary>The folder the libraries come from: the configured one, else $KSERVE_NODE_NATIVE_DIR, else <c>.native/cpu</c> above the app, else <c>native/</c> beside it.</summary>
    public static string ResolveDirectory(string? configured)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Path.GetFullPath(configured);
        }

        var env = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrWhiteSpace(env))
        {
            return Path.GetFullPath(env);
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ".native", "cpu");
            if (File.Exists(Path.Combine(candidate, "libllama.v0.5.0.so")))
            {
                return candidate;
            }
        }

        return Path.Combine(AppContext.BaseDirectory, "native");
    }

    /// <summary>Loads the libraries and backends (once) and checks that the requested backend is usable.</summary>
    public static void EnsureLoaded(string? configuredDir, LlamaBackend backend, ILogger logger)
    {
        _logger = logger;
        var dir = ResolveDirectory(configuredDir);
        lock (Gate)
        {
            if (_loadedDir is null)
            {
                Load(dir, backend);
                _loadedDir = dir;
            }
            else if (!string.Equals(_loadedDir, dir, StringComparison.Ordinal))
            {
                throw new LlamaLoadException($"llama.cpp is already loaded from '{_loadedDir}'; one process cannot also load it from '{dir}'");
            }
        }

        CheckBackend(dir, backend);
    }

    /// <summary>
    /// Whether the loaded CPU backend runs its threads with OpenMP (true), or with ggml's own threadpool, whose
    /// threads spin between graph nodes (false); null without a CPU backend.
    /// </summary>
    public static bool? CpuUsesOpenMp()
    {
        var dev = NativeMethods.ggml_backend_dev_by_type((int)BackendDeviceType.Cpu);
        if (dev == IntPtr.Zero)
        {
            return null;
        }

        var reg = NativeMethods.ggml_backend_dev_backend_reg(dev);
        var features = (delegate* unmanaged[Cdecl]<IntPtr, BackendFeature*>)NativeMethods.ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features");
        if (features == null)
        {
            return null;
        }

        for (var f = features(reg); f->Name != IntPtr.Zero; f++)
        {
            if (Marshal.PtrToStringUTF8(f->Name) == "OPENMP")
            {
                return Marshal.PtrToStringUTF8(f->Value) == "1";
            }
        }

        return false;
    }

    /// <summary>ggml's <c>ggml_backend_feature</c>: a name and a value, the list ending with a null name.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct BackendFeature
    {
        public readonly IntPtr Name;
        public readonly IntPtr Value;
    }

    /// <summary>The ggml devices the loaded backends expose.</summary>
    public static IReadOnlyList<(string Name, string Description, BackendDeviceType Type, ulong FreeBytes, ulong TotalBytes)> Devices()
    {
        var list = new List<(string, string, BackendDeviceType, ulong, ulong)>();
        var n = NativeMethods.ggml_backend_dev_count();
        for (nuint i = 0; i < n; i++)
        {
            var dev = NativeMethods.ggml_backend_dev_get(i);
            nuint free = 0, total = 0;
            NativeMethods.ggml_backend_dev_memory(dev, &free, &total);
            list.Add((Marshal.PtrToStringUTF8(NativeMethods.ggml_backend_dev_name(dev)) ?? "?",
                Marshal.PtrToStringUTF8(NativeMethods.ggml_backend_dev_description(dev)) ?? "?",
                (BackendDeviceType)NativeMethods.ggml_backend_dev_type(dev), free, total));
        }

        return list;
    }

    private static void Load(string dir, LlamaBackend backend)
    {
        if (!Directory.Exists(dir))
        {
            throw new LlamaLoadException($"the llama.cpp library folder '{dir}' does not exist: run scripts/setup.sh, or set {DirectoryVariable} or EngineOptions.NativeLibraryDirectory");
        }

        string Find(params string[] names)
        {
            foreach (var n in names)
            {
                var p = Path.Combine(dir, n);
                if (File.Exists(p))
                {
                    return p;
                }
            }

            throw new LlamaLoadException($"'{names[0]}' is missing from '{dir}' (expected one of: {string.Join(", ", names)})");
        }

        // The CUDA build of the pinned npm package (@node-llama-cpp/linux-x64-cuda) names its libraries *.cuda.v0.5.0.so.
        var paths = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [NativeMethods.GgmlBase] = Find("libggml-base.so"),
            [NativeMethods.Ggml] = Find("libggml.v0.5.0.so", "libggml.cuda.v0.5.0.so", "libggml.so"),
            [NativeMethods.Llama] = Find("libllama.v0.5.0.so", "libllama.cuda.v0.5.0.so", "libllama.so"),
        };
        foreach (var (name, path) in paths)
        {
            try
            {
                Handles[name] = NativeLibrary.Load(path);
            }
            catch (DllNotFoundException e)
            {
                throw new LlamaLoadException($"'{path}' could not be loaded: {e.Message}", e);
            }
        }

        NativeLibrary.SetDllImportResolver(typeof(LlamaNative).Assembly, Resolve);
        NativeMethods.llama_log_set(&OnLog, null);
        NativeMethods.ggml_backend_load_all_from_path(dir);
        NativeMethods.llama_backend_init();
    }

    private static void CheckCudaFiles(string dir)
    {
        if (!File.Exists(Path.Combine(dir, "libggml-cuda.so")))
        {
            throw new LlamaLoadException($"the CUDA backend was requested but 'libggml-cuda.so' is not in '{dir}'");
        }

        string[] runtimes = ["libcudart.so.13", "libcudart.so.12"];
        if (!runtimes.Any(r => NativeLibrary.TryLoad(r, out _) || NativeLibrary.TryLoad(Path.Combine(dir, r), out _)))
        {
            throw new LlamaLoadException($"the CUDA backend was requested but the CUDA runtime ({string.Join(" or ", runtimes)}) cannot be loaded: install the CUDA runtime or use a CUDA base image");
        }

        if (!NativeLibrary.TryLoad("libcuda.so.1", out _))
        {
            throw new LlamaLoadException("the CUDA backend was requested but the NVIDIA driver library libcuda.so.1 cannot be loaded (no driver, or the container was started without GPU access)");
        }
    }

    private static void CheckBackend(string dir, LlamaBackend backend)
    {
        var devices = Devices();
        if (!devices.Any(d => d.Type == BackendDeviceType.Cpu))
        {
            throw new LlamaLoadException($"no ggml CPU backend was loaded from '{dir}' (expected libggml-cpu-*.so there)");
        }

        if (backend == LlamaBackend.Cuda && !devices.Any(d => d.Type == BackendDeviceType.Gpu))
        {
            CheckCudaFiles(dir);
            throw new LlamaLoadException($"the CUDA backend was requested but no GPU device is visible (devices: {string.Join(", ", devices.Select(d => d.Name))}); check libggml-cuda.so in '{dir}' loads and a GPU is present");
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path) =>
        Handles.TryGetValue(name, out var h) ? h : IntPtr.Zero;

    // ggml calls this from its worker threads too; a line may arrive in pieces (level 5 continues the previous one).
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnLog(int level, byte* text, void* userData)
    {
        try
        {
            var s = Marshal.PtrToStringUTF8((IntPtr)text) ?? string.Empty;
            var sb = _pendingLine ??= new StringBuilder();
            if ((GgmlLogLevel)level != GgmlLogLevel.Continue)
            {
                if (sb.Length > 0)
                {
                    Emit(_pendingLevel, sb.ToString());
                    sb.Clear();
                }

                _pendingLevel = (GgmlLogLevel)level;
            }

            sb.Append(s);
            if (s.EndsWith('\n'))
            {
                Emit(_pendingLevel, sb.ToString().TrimEnd('\n'));
                sb.Clear();
            }
        }
        catch
        {
            // An exception must never unwind into native code.
        }
    }

    private static void Emit(GgmlLogLevel level, string message)
    {
        var logLevel = level switch
        {
            GgmlLogLevel.Error => LogLevel.Error,
            GgmlLogLevel.Warn => LogLevel.Warning,
            GgmlLogLevel.Info => LogLevel.Debug,
            _ => LogLevel.Trace,
        };
        Log.Native(_logger, logLevel, message);
    }
}
