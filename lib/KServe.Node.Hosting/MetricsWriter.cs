using System.Globalization;
using System.Text;
using Prometheus;

namespace KServe.Node.Hosting;

/// <summary>
/// A source of metric families written after prometheus-net's own, in Prometheus text format 0.0.4.
/// prometheus-net refuses <c>:</c> in names, so vLLM-compatible families (<c>vllm:*</c>) come from here.
/// </summary>
public interface IMetricsExposition
{
    /// <summary>Writes complete families (HELP, TYPE, samples) to the writer.</summary>
    void Write(PrometheusText writer);
}

internal static class MetricsWriter
{
    public static async Task WriteAsync(Stream body, IEnumerable<IMetricsExposition> sources, CancellationToken ct)
    {
        await Metrics.DefaultRegistry.CollectAndExportAsTextAsync(body, ct).ConfigureAwait(false);
        var text = new PrometheusText();
        foreach (var source in sources)
        {
            source.Write(text);
        }
        if (text.Length > 0)
        {
            var bytes = Encoding.UTF8.GetBytes(text.ToString());
            await body.WriteAsync(bytes, ct).ConfigureAwait(false);
        }
    }
}

/// <summary>
/// A small writer of the Prometheus text exposition format 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/): HELP/TYPE lines, label escaping,
/// and histogram series with cumulative buckets, <c>_sum</c> and <c>_count</c>.
/// </summary>
public sealed class PrometheusText
{
    /// <summary>The content type of the text format.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly StringBuilder _sb = new();

    /// <summary>Characters written so far.</summary>
    public int Length => _sb.Length;

    /// <summary>Writes the HELP and TYPE lines of a family.</summary>
    public PrometheusText Family(string name, string type, string help)
    {
        _sb.Append("# HELP ").Append(name).Append(' ').Append(EscapeHelp(help)).Append('\n');
        _sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        return this;
    }

    /// <summary>Writes one sample line.</summary>
    public PrometheusText Sample(string name, IReadOnlyList<KeyValuePair<string, string>> labels, double value)
    {
        _sb.Append(name);
        AppendLabels(labels, extra: null);
        _sb.Append(' ').Append(FormatValue(value)).Append('\n');
        return this;
    }

    /// <summary>
    /// Writes a histogram's series. <paramref name="bucketCounts"/> are per-bucket (not cumulative) counts
    /// for <paramref name="upperBounds"/>, plus one final count for +Inf.
    /// </summary>
    public PrometheusText Histogram(string name, IReadOnlyList<KeyValuePair<string, string>> labels,
        IReadOnlyList<double> upperBounds, IReadOnlyList<long> bucketCounts, double sum)
    {
        ArgumentNullException.ThrowIfNull(upperBounds);
        ArgumentNullException.ThrowIfNull(bucketCounts);
        if (bucketCounts.Count != upperBounds.Count + 1)
        {
            throw new ArgumentException("bucketCounts needs one entry per bound plus one for +Inf.", nameof(bucketCounts));
        }
        long cumulative = 0;
        for (var i = 0; i <= upperBounds.Count; i++)
        {
            cumulative += bucketCounts[i];
            var le = i < upperBounds.Count ? FormatValue(upperBounds[i]) : "+Inf";
            _sb.Append(name).Append("_bucket");
            AppendLabels(labels, new KeyValuePair<string, string>("le", le));
            _sb.Append(' ').Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        Sample(name + "_sum", labels, sum);
        Sample(name + "_count", labels, cumulative);
        return this;
    }

    /// <inheritdoc />
    public override string ToString() => _sb.ToString();

    private void AppendLabels(IReadOnlyList<KeyValuePair<string, string>> labels, KeyValuePair<string, string>? extra)
    {
        if (labels.Count == 0 && extra is null)
        {
            return;
        }
        _sb.Append('{');
        var first = true;
        foreach (var (k, v) in labels)
        {
            AppendLabel(k, v, ref first);
        }
        if (extra is { } e)
        {
            AppendLabel(e.Key, e.Value, ref first);
        }
        _sb.Append('}');
    }

    private void AppendLabel(string key, string value, ref bool first)
    {
        if (!first)
        {
            _sb.Append(',');
        }
        first = false;
        _sb.Append(key).Append("=\"");
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': _sb.Append("\\\\"); break;
                case '"': _sb.Append("\\\""); break;
                case '\n': _sb.Append("\\n"); break;
                default: _sb.Append(c); break;
            }
        }
        _sb.Append('"');
    }

    private static string EscapeHelp(string help) => help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    internal static string FormatValue(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf"
        : double.IsNegativeInfinity(v) ? "-Inf"
        : double.IsNaN(v) ? "NaN"
        : v.ToString("R", CultureInfo.InvariantCulture);
}
