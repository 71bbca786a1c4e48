echo f > f.txt; mkdir -p dir/s; echo g > dir/s/g; echo h > dir/h; chmod 700 dir/h
