# Latency of one outstanding 4 KiB request, raw TCP ping-pong vs memory server:
# distribution with the threads pinned (left) and the p50 of each interleaved
# round for every placement (right), from the data bench-memserver writes.
# Run by bench-report with term, datadir and outfile set.
if (!exists("term")) term = "pngcairo"
if (!exists("datadir")) datadir = "docs/bench"
if (!exists("outfile")) outfile = datadir . "/memserver-latency.png"
eval sprintf("set terminal %s size 1300,520", term)
set output outfile
set grid
raw = "#1f77b4"
ms = "#d62728"
set multiplot layout 1,2 title "One outstanding 4 KiB READ over loopback TCP vs a raw ping-pong of the same sizes (same run)"

# memserver-latency.dat: quantile, then raw/memserver pairs for
# cross_cpu (2,3), same_cpu (4,5), unpinned (6,7).
lat = datadir . "/memserver-latency.dat"
set title "Distribution up to p99.9, threads pinned"
set xlabel "round trip (us, log scale)"
set ylabel "fraction of round trips at or below"
set yrange [0:1]
set logscale x
set key bottom right
plot lat using 2:1 with lines lw 2 lc rgb raw title "raw, different CPUs", \
     lat using 3:1 with lines lw 2 lc rgb ms title "memserver, different CPUs", \
     lat using 4:1 with lines lw 2 dt 2 lc rgb raw title "raw, same CPU", \
     lat using 5:1 with lines lw 2 dt 2 lc rgb ms title "memserver, same CPU"

# memserver-rounds.dat: round, then raw/memserver p50 pairs in the same order.
unset logscale x
set autoscale
rounds = datadir . "/memserver-rounds.dat"
set title "p50 of each round (order of raw/memserver alternates)"
set xlabel "round"
set ylabel "p50 round trip (us)"
set yrange [0:*]
set xtics 1
set key outside below horizontal maxrows 2 width -4
plot rounds using 1:2 with linespoints lw 2 pt 7 lc rgb raw title "raw, different CPUs", \
     rounds using 1:3 with linespoints lw 2 pt 7 lc rgb ms title "memserver, different CPUs", \
     rounds using 1:4 with linespoints lw 2 dt 2 pt 5 lc rgb raw title "raw, same CPU", \
     rounds using 1:5 with linespoints lw 2 dt 2 pt 5 lc rgb ms title "memserver, same CPU", \
     rounds using 1:6 with linespoints lw 1 dt 3 pt 6 lc rgb raw title "raw, unpinned", \
     rounds using 1:7 with linespoints lw 1 dt 3 pt 6 lc rgb ms title "memserver, unpinned"
unset multiplot
