echo 1 > one.txt; echo 2 > two.txt; echo x > x.log; mkdir -p src/p src/q; echo p > src/p/f1.c; echo q > src/q/f2.c; echo n > src/q/g1.c; echo a > a.md; echo b > b.md; echo c > c.md
