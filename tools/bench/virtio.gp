# bench-blk / bench-net: vmm against QEMU, MB/s per direction (medians).
# Run by bench-report: gnuplot -e "term=...; datadir=...; outfile=..." virtio.gp
# The data file is the image's name with .dat: "direction vmm qemu" rows.
datafile = outfile[1:strlen(outfile) - 4] . ".dat"
set terminal term size 640,400 noenhanced
set output outfile
set ylabel "MB/s (median)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key top right
plot datafile using 2:xtic(1) title "vmm" lc rgb "#4477aa", \
     '' using 3 title "QEMU" lc rgb "#cc6677"
