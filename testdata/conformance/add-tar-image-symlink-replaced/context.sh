mkdir -p t/lib2; echo hi > t/lib2/foo; tar --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name -C t -cf x.tar lib2; rm -rf t
