mkdir -p ../extra/sub
printf 'from extra\n' > ../extra/f.txt
printf 'g\n' > ../extra/sub/g.txt
printf 'ignored\n' > ../extra/skip.txt
chmod 0750 ../extra/sub
printf 'skip.txt\n' > ../extra/.dockerignore
printf a > a
