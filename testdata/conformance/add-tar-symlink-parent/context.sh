mkdir -p t; ln -s /etc t/l; echo evil > t/evil
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C t -cf sym.tar l
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C t -rf sym.tar --transform 's,^evil$,l/evil,' evil
rm -rf t
