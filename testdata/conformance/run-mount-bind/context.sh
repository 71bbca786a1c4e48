echo bound > data.txt; mkdir sub; echo s > sub/s
