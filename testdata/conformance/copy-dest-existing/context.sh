echo new > f.txt
