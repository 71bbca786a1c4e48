echo f > f.txt; echo g > g.txt; mkdir dir; echo i > dir/i.txt
