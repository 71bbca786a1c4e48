mkdir -p t/lib2; echo hi > t/lib2/foo
