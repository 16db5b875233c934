namespace KServe.Node.Llama.Native;

/// <summary>
/// A persistent ggml CPU threadpool attached to a context. Without one, every graph computation (every
/// <c>llama_decode</c>) creates and joins its worker threads anew (the bundled libraries are built without OpenMP);
/// llama-server attaches one too. The pool must outlive every context it is attached to.
/// </summary>
internal sealed unsafe class CpuThreadpool : IDisposable
{
    private readonly delegate* unmanaged[Cdecl]<IntPtr, void> _free;
    private IntPtr _pool;

    private CpuThreadpool(IntPtr pool, delegate* unmanaged[Cdecl]<IntPtr, void> free)
    {
        _pool = pool;
        _free = free;
    }

    public IntPtr Handle => _pool;

    /// <summary>
    /// Creates a pool of <paramref name="threads"/> threads (the thread calling <c>llama_decode</c> is one of them) with
    /// ggml's hybrid polling level <paramref name="poll"/> (ggml's and llama-server's default is 50), or null when
    /// the CPU backend offers none.
    /// </summary>
    public static CpuThreadpool? TryCreate(int threads, int poll, bool paused)
    {
        var dev = NativeMethods.ggml_backend_dev_by_type((int)BackendDeviceType.Cpu);
        if (dev == IntPtr.Zero)
        {
            return null;
        }

        var reg = NativeMethods.ggml_backend_dev_backend_reg(dev);
        var create = (delegate* unmanaged[Cdecl]<GgmlThreadpoolParams*, IntPtr>)NativeMethods.ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
        var free = (delegate* unmanaged[Cdecl]<IntPtr, void>)NativeMethods.ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free");
        if (create == null || free == null)
        {
            return null;
        }

        NativeMethods.ggml_threadpool_params_init(out var p, threads);
        p.Paused = paused ? (byte)1 : (byte)0;
        p.Poll = (uint)poll;
        var pool = create(&p);
        return pool == IntPtr.Zero ? null : new CpuThreadpool(pool, free);
    }

    public void Dispose()
    {
        if (_pool != IntPtr.Zero)
        {
            _free(_pool);
            _pool = IntPtr.Zero;
        }
    }
}
