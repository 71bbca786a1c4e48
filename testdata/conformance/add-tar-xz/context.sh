mkdir -p t/d; echo a > t/d/a; echo b > t/b; chmod 640 t/b; ln -s d/a t/sl; tar --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name -C t -cf a.tar . && xz a.tar
