# bench-vmm: process start to the guest's init line, median per configuration.
# Run by bench-report: gnuplot -e "term=...; datadir=...; outfile=..." vmm.gp
set terminal term size 720,420
set output outfile
set title "Process start to guest init (median)"
set ylabel "seconds"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set grid ytics
unset key
plot datadir."/vmm-boot.dat" using 2:xtic(1) lc rgb "#4477aa"
