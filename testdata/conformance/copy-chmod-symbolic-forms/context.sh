echo f > f.txt; echo x > x.sh; mkdir -p dir/s; echo g > dir/s/g; chmod 644 f.txt dir/s/g; chmod 750 x.sh; chmod 755 dir dir/s
