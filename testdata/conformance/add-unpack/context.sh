mkdir -p t; echo a > t/a; tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C t -cf x.tar a; gzip -n -c x.tar > x.tgz
