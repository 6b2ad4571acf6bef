# Workload time on the virtual cache over all-local memory (bench-ept-workload):
# one group per pattern, one bar per cache size, log scale.
eval sprintf("set terminal %s size 900,480", term)
set output outfile
set title "Virtual cache: workload time / the same workload on local memory (same run)"
set ylabel "time ratio, cached / local (log scale)"
set logscale y
set yrange [0.5:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key outside bottom center horizontal
set xtics nomirror
plot datadir."/ept-workload.dat" using 2:xtic(1) title "cache 100% of working set" lc rgb "#88ccee", \
     '' using 3 title "cache 50%" lc rgb "#4477aa", \
     '' using 4 title "cache 25%" lc rgb "#222255"
