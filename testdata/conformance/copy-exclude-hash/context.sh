mkdir -p dir
printf 'kept\n' > dir/a
printf 'hash\n' > 'dir/#skip'
