mkdir -p ../extra/sub
printf 'from extra\n' > ../extra/f.txt
printf 'g\n' > ../extra/sub/g.txt
printf 'ignored\n' > ../extra/skip.txt
chmod 0640 ../extra/sub/g.txt
printf 'skip.txt\n' > ../extra/.dockerignore
# The main context's .dockerignore does not reach the named one.
printf 'f.txt\n' > .dockerignore
