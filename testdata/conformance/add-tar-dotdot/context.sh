mkdir -p t/in; echo ok > t/in/ok; echo bad > esc
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C t -P -cf evil.tar in/ok ../esc
