echo notreally > plain.gz; echo f > f.txt
