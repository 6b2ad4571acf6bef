# Pages per second, raw TCP vs memory server, for each depth and operation,
# from the data bench-memserver writes. Run by bench-report with term,
# datadir, outfile set.
if (!exists("term")) term = "pngcairo"
if (!exists("datadir")) datadir = "docs/bench"
if (!exists("outfile")) outfile = datadir . "/memserver-throughput.png"
eval sprintf("set terminal %s size 900,480", term)
set output outfile
data = datadir . "/memserver-throughput.dat"
set title "4 KiB pages per second over loopback TCP (same run, alternating rounds)"
set ylabel "thousand pages / s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key top left
plot data using 2:xtic(sprintf("%s\nmemserver/raw %.2f", strcol(1), $3 / $2)) lc rgb "#1f77b4" title "raw TCP, same sizes", \
     data using 3 lc rgb "#d62728" title "memserver", \
     data using ($0 - 0.17):2:(sprintf("%.0f", $2)) with labels offset 0,0.8 notitle, \
     data using ($0 + 0.17):3:(sprintf("%.0f", $3)) with labels offset 0,0.8 notitle
