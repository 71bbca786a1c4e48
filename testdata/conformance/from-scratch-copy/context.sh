echo a > a.txt; mkdir -p dir/sub; echo b > dir/sub/b.txt; chmod 600 dir/sub/b.txt
