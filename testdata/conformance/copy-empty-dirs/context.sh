mkdir -p e1 tree/e2 tree/f; echo x > tree/f/x; chmod 0750 tree/e2; chmod 0705 e1
