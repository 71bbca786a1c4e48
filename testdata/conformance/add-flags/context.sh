mkdir -p dir/sub; echo a > a.txt; echo b > b.txt; echo k > dir/keep.txt; echo l > dir/drop.log; echo s > dir/sub/s.txt; chmod 0755 dir/sub/s.txt
