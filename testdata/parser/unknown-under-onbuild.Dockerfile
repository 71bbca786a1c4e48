FROM alpine
ONBUILD  CPOY . /app
