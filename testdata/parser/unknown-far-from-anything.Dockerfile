FROM alpine
	  RUN --mount=type=cache,target=/c \
  make \
  && make install
XYZZY
