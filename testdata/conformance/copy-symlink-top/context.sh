echo t > target.txt; ln -s target.txt link.txt; mkdir real; echo r > real/r.txt; ln -s real dirlink
