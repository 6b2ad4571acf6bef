# Miss ratio against cache size per policy, one panel per trace (bench-ept-policy).
# ept-policy.dat: one block per trace (zipf, graph, sort); columns cache_pct
# cache_pages FIFO LRU OPT ept:clock ept:fifo.
eval sprintf("set terminal %s size 1200,420", term)
set output outfile
set multiplot layout 1,3 title "Replacement policies on the same traces: miss ratio (misses / accesses)"
set xlabel "cache, % of the trace's distinct pages"
set logscale x
set xtics (2, 5, 10, 25, 50)
set grid
set key top right
set yrange [0:*]
names = "zipf:0.99 graph(PageRank) sort(lackey)"
do for [i=0:2] {
	set title word(names, i + 1)
	if (i == 0) { set ylabel "miss ratio" } else { unset ylabel }
	plot datadir."/ept-policy.dat" index i using 1:3 with linespoints lw 2 pt 4 lc rgb "#999999" title "FIFO", \
	     '' index i using 1:4 with linespoints lw 2 pt 6 lc rgb "#4477aa" title "LRU", \
	     '' index i using 1:5 with linespoints lw 2 pt 8 lc rgb "#228833" title "OPT", \
	     '' index i using 1:6 with linespoints lw 2 pt 7 lc rgb "#cc3311" title "ept:clock"
}
unset multiplot
