echo a > a.txt; echo l > x.log; echo k > keep.log; mkdir -p secret sub/deep; echo s > secret/s; echo t > sub/deep/t.tmp; echo u > sub/deep/u.txt
