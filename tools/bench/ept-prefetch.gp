# Faults of a sequential scan at 25% cache, prefetch off and on (bench-ept-prefetch):
# one stacked bar per case, split by what served the fault.
eval sprintf("set terminal %s size 900,480", term)
set output outfile
set title "Sequential scan, cache 25%: faults of two reading passes by how they were served"
set ylabel "missing-page faults (median round)"
set style data histograms
set style histogram rowstacked
set style fill solid 0.8 border -1
set boxwidth 0.6
set grid ytics
set yrange [0:*]
set key outside bottom center horizontal
set xtics rotate by -20
plot datadir."/ept-prefetch.dat" using 2:xtic(1) title "fetch / zero page" lc rgb "#222255", \
     '' using 3 title "joined in flight" lc rgb "#4477aa", \
     '' using 4 title "sampled copy (inactive)" lc rgb "#ee7733", \
     '' using 5 title "write-back buffer" lc rgb "#bbbbbb"

