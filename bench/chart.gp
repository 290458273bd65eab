# The chart docs/benchmarks.png, drawn by bench/bench.sh from the data files
# it writes:
#
#   gnuplot -e "term='pngcairo'; out='chart.png'; tp='throughput.dat'; \
#               lat='latency.dat'; npaths=3; subtitle='...'" bench/chart.gp
#
# term is pngcairo or png (libgd), whichever this gnuplot has.  Each data
# file has a header row ("case", then per path: "LABEL" min max), then one
# row per case: its label and, per path, the median, min and max over the
# repetitions (NaN: no figure).  Bars are medians, error bars min–max.
# Both panels use a log scale: direct TCP is ten times faster than either
# proxy, and on a linear axis the proxies' bars would be too short to compare.

if (term eq 'pngcairo') {
  set terminal pngcairo size 1200,960 font 'sans,11' noenhanced
  small = 'sans,9'
} else {
  set terminal png size 1200,960 noenhanced
  small = ''
}
set output out

# One colour per path, in BENCH_PATHS order (direct, ssh, sfkit by default).
colors = '#9a9a9a #e08a2e #2b6cb0 #5aa469 #a4508b'
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set style fill solid 0.85 border rgb '#333333'
set boxwidth 1.0
set logscale y
set grid ytics mytics lc rgb '#dddddd'
set key below horizontal
# The header row names the paths (and is not a case).
set key autotitle columnheader
set xtics nomirror scale 0
set ytics nomirror
set tmargin 3
set bmargin 4
set lmargin 12

# Clustered histograms put case k (row k, from 0) at x = k, its npaths
# bars side by side, each 1/(npaths + gap) wide: bar i's centre, for the
# value labels above the error bars.
gap = 1
xbar(k, i) = k + (i - (npaths + 1) / 2.0) / (npaths + gap)
label(v) = (v != v) ? '' : (v >= 100 ? sprintf('%.0f', v) : sprintf('%.1f', v))

set multiplot layout 2,1 title 'sfkit-proxy benchmark on 127.0.0.1: '.subtitle

set title 'Throughput, MiB/s (higher is better; log scale)'
set ylabel 'MiB/s'
set yrange [10:*]
plot for [i=1:npaths] tp using (column(3*i-1)):(column(3*i)):(column(3*i+1)):xtic(1) \
       title columnheader(3*i-1) lc rgb word(colors, i), \
     for [i=1:npaths] tp using (xbar($0, i)):(column(3*i+1)):(label(column(3*i-1))) \
       with labels offset 0,0.7 font small notitle

set title 'Round-trip latency, µs (lower is better; log scale)'
set ylabel 'µs'
set yrange [10:*]
plot for [i=1:npaths] lat using (column(3*i-1)):(column(3*i)):(column(3*i+1)):xtic(1) \
       title columnheader(3*i-1) lc rgb word(colors, i), \
     for [i=1:npaths] lat using (xbar($0, i)):(column(3*i+1)):(label(column(3*i-1))) \
       with labels offset 0,0.7 font small notitle

unset multiplot
