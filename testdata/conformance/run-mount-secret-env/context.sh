printf s3cr3t > ../secret.txt
