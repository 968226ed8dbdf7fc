#!/bin/sh
# udhcpc hook: apply the lease's address and router to $interface; nothing else.
case "$1" in
  deconfig) ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface" ;;
esac
exit 0
