mkdir -p dir/sub/skip dir/sub/keep; echo a > dir/a.txt; echo l > dir/a.log; echo s > dir/sub/skip/s; echo k > dir/sub/keep/k; echo l2 > dir/sub/b.log
