mkdir -p d/sticky; chmod 1777 d/sticky; echo s > d/suid; chmod 4755 d/suid; echo g > d/sgid; chmod 2755 d/sgid; mkdir d/sgdir; chmod 2775 d/sgdir
