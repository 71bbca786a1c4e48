mkdir -p t; echo abs > t/abs; tar --owner=0 --group=0 --numeric-owner --mtime=@0 -P -C t -cf abs.tar --transform 's,^abs$,/abs-file,' abs; rm -rf t
