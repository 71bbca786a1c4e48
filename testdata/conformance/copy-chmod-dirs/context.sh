echo f > f.txt; mkdir -p dir/s; echo g > dir/s/g; chmod 644 f.txt dir/s/g; chmod 755 dir dir/s
