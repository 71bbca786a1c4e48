FROM alpine

RNU echo hi
