using System.Security.Cryptography;
using System.Text;

namespace KServe.Node.Api;

/// <summary>
/// The storage key of a model source: the first 16 lower-case hex characters of SHA-256 over the exact
/// URI bytes (spec §1.7). It names the folder <c>{root}/models/{key}</c>, so caches with the same URI
/// share one copy.
/// </summary>
public static class StorageKey
{
    /// <summary>Length of a storage key in characters.</summary>
    public const int Length = 16;

    /// <summary>Computes the storage key of <paramref name="sourceModelUri"/>. No normalisation is done:
    /// <c>s3://foo</c> and <c>s3://foo/</c> give different keys.</summary>
    public static string Compute(string sourceModelUri)
    {
        ArgumentNullException.ThrowIfNull(sourceModelUri);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(sourceModelUri), hash);
        // 16 hex characters = the first 8 bytes.
        return Convert.ToHexStringLower(hash[..(Length / 2)]);
    }

    /// <summary>True when <paramref name="key"/> has the shape of a storage key (16 lower-case hex characters).</summary>
    public static bool IsValid(string? key)
    {
        if (key is null || key.Length != Length)
        {
            return false;
        }

        foreach (var c in key)
        {
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f'))
            {
                return false;
            }
        }

        return true;
    }
}
