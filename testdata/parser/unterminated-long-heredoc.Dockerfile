FROM alpine
RUN <<SCRIPT
echo step 1
echo step 2
echo step 3
echo step 4
echo step 5
echo step 6
echo step 7
echo step 8
echo step 9
echo step 10
echo step 11
echo step 12
