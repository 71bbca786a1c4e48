mkdir -p one/p two/q; echo first > one/p/f; echo file > one/q; mkdir -p two/p; rm -rf two/p; echo now-file > two/p; mkdir -p two/q; echo inside > two/q/i
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C one -cf dup.tar p q
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C two -rf dup.tar p q
