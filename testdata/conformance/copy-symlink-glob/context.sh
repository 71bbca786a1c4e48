echo t > target.txt; ln -s target.txt link.txt; mkdir sub; ln -s ../target.txt sub/up.txt
