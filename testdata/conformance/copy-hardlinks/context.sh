mkdir d; echo h > d/a; ln d/a d/b; ln d/a d/c
