: > empty.txt; mkdir emptydir; mkdir -p tree/a/b/c; : > tree/a/z
