namespace KServe.Node.Runtime;

/// <summary>Leader election on a coordination.k8s.io Lease, so that one replica of a controller reconciles.</summary>
public sealed record LeaderElectionOptions
{
    /// <summary>Namespace of the Lease.</summary>
    public required string LeaseNamespace { get; init; }

    /// <summary>Name of the Lease (one per controller deployment).</summary>
    public required string LeaseName { get; init; }

    /// <summary>This replica's identity (default: host name plus a random suffix).</summary>
    public string Identity { get; init; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>How long a lease is valid without renewal; others wait this long after the leader vanishes.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long the leader keeps trying to renew before it gives up leadership.</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Interval between acquire or renew attempts.</summary>
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>On a clean stop, clear the lease holder so another replica takes over at once.</summary>
    public bool ReleaseOnStop { get; init; } = true;

    /// <summary>Throws when the timings cannot work (client-go's rules: duration &gt; deadline &gt; 1.2 × retry).</summary>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(LeaseNamespace);
        ArgumentException.ThrowIfNullOrEmpty(LeaseName);
        ArgumentException.ThrowIfNullOrEmpty(Identity);
        if (LeaseDuration <= RenewDeadline)
        {
            throw new ArgumentException($"LeaseDuration ({LeaseDuration}) must be longer than RenewDeadline ({RenewDeadline})");
        }

        if (RenewDeadline <= RetryPeriod * 1.2)
        {
            throw new ArgumentException($"RenewDeadline ({RenewDeadline}) must be longer than 1.2 × RetryPeriod ({RetryPeriod})");
        }

        if (LeaseDuration.TotalSeconds < 1)
        {
            throw new ArgumentException("LeaseDuration must be at least one second (Lease durations are whole seconds)");
        }
    }
}
