mkdir -p t; echo a > t/a; tar --owner=1000 --group=50 --numeric-owner --mtime=@0 -C t -cf owned.tar a
