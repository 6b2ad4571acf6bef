# bench-rdma: one outstanding 4 KiB READ (p50, p99) for perftest and the
# memory-server client, pages/s at 32 outstanding, and the client's work
# redone with bare verbs on the store's slot layout (read1: one 4 KiB READ;
# slot: one 4104-byte READ of page + sum, the client's wire work; slot_sum:
# + checksum and copy; read2: the former layout's READ pair, for reference),
# from the data files tools/bench/rdma.sh writes.
# Run by bench-report: gnuplot -e "term=...; datadir=...; outfile=..." rdma.gp
if (!exists("term")) term = "pngcairo"
if (!exists("datadir")) datadir = "docs/bench"
if (!exists("outfile")) outfile = datadir . "/rdma.png"
eval sprintf("set terminal %s size 1500,480 noenhanced", term)
set output outfile
set multiplot layout 1,3 title "Memory-server READ over rdma:// (Soft-RoCE, qemu TCG test hosts) against perftest and tcp://, same run"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set xtics rotate by -30
set key top left

# rdma-latency.dat: label p50 p99 (us); NaN when not measured.
set title "One outstanding 4 KiB READ"
set ylabel "us (medians over rounds)"
set logscale y
set format y "%g"
set yrange [100:*]
plot datadir."/rdma-latency.dat" using 2:xtic(1) title "p50" lc rgb "#4477aa", \
     '' using 3 title "p99" lc rgb "#aaccee"
unset logscale y
set format y "%g"

# rdma-tput.dat: label pages/s.
set title "32 outstanding 1-page READs"
set ylabel "pages/s (median over rounds)"
set yrange [0:*]
unset key
plot datadir."/rdma-tput.dat" using 2:xtic(1) lc rgb "#228833"
set key top left

# rdma-verbs.dat: variant busy_p50 event_p50 (us); variants read1 slot
# slot_sum read2.
set title "The client's work with bare verbs, slot layout (p50)"
set ylabel "us"
plot datadir."/rdma-verbs.dat" using 2:xtic(1) title "busy-poll" lc rgb "#cc6677", \
     '' using 3 title "CQ events" lc rgb "#ddcc77"
unset multiplot
