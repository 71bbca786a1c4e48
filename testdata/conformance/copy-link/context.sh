echo f > f.txt; mkdir -p dir/s; echo g > dir/s/g
