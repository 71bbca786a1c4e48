mkdir -p t/a/b/c; echo hi > t/a/b/bar; echo c > t/a/b/c/d; tar --owner=0 --group=0 --numeric-owner --mtime=@0 --no-recursion -C t -cf x.tar a/b/bar a/b/c/d; rm -rf t
