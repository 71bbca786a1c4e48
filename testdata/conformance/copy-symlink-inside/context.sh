mkdir -p tree/sub; echo x > tree/sub/x; ln -s sub/x tree/rel; ln -s /etc/passwd tree/abs; ln -s ../outside tree/up; ln -s nowhere tree/dangling
