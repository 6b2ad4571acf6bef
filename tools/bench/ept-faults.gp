# Fault service time by kind (bench-ept): p10..p90 boxes with p50 and p99 marks.
set terminal term size 900,480
set output outfile
set title "Virtual cache: time a thread waits on a fault (same run)"
set ylabel "microseconds (log scale)"
set logscale y
set style fill solid 0.35
set boxwidth 0.5
set grid ytics
set xtics rotate by 0
set key top left
plot datadir."/ept-faults.dat" using 0:2:2:4:4:xtic(1) with candlesticks lc rgb "#4477aa" title "p10-p90", \
     '' using 0:3:3:3:3 with candlesticks lw 3 lc rgb "#222222" title "p50", \
     '' using 0:5 with points pt 7 ps 1.2 lc rgb "#cc3311" title "p99"
