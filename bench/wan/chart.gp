# The WAN benchmark's chart: throughput (Mbit/s, log scale) of direct TCP,
# ssh -D and sfkit-proxy per setting, 1 and 8 connections.  Called by
# bench/wan/report.sh:  gnuplot -e "data='F'; out='F.png'" chart.gp
# data: "label direct1 ssh1 proxy1 direct8 ssh8 proxy8" lines.
set terminal pngcairo size 1400,560 font ",10"
set output out
set multiplot layout 1,2 title "Emulated WAN, 1 Gbit/s: throughput the receiver got (median; log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [1:1200]
set ylabel "Mbit/s"
set xtics rotate by -35 scale 0
set key top right
set grid ytics
set title "1 connection"
plot data using 2:xtic(1) title "direct TCP (CUBIC)" lc rgb "#777777", \
     '' using 3 title "ssh -D" lc rgb "#d08c2a", \
     '' using 4 title "sfkit-proxy" lc rgb "#2a6fd0"
set title "8 connections"
plot data using 5:xtic(1) title "direct TCP (CUBIC)" lc rgb "#777777", \
     '' using 6 title "ssh -D" lc rgb "#d08c2a", \
     '' using 7 title "sfkit-proxy" lc rgb "#2a6fd0"
unset multiplot
