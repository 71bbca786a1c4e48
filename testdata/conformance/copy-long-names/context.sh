n100=$(printf 'n%.0s' $(seq 120))
d=long/$(printf 'a%.0s' $(seq 90))/$(printf 'b%.0s' $(seq 90))/$(printf 'c%.0s' $(seq 90))
mkdir -p "$d"
echo long > "long/$n100"
echo deep > "$d/$n100"
ln -s "$n100" "long/link-$(printf 'l%.0s' $(seq 110))"
