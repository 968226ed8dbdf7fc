#!/bin/busybox sh
# vifscope lab guest /init. It is PID 1: it must never exit, or the kernel panics.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1

for m in @MODULES@; do
  [ -f "/lib/modules/$m.ko" ] || continue
  insmod "/lib/modules/$m.ko" || echo "vs-init: insmod $m failed"
done

gw= name=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vs.ip[0-9]*=*|vs.dhcp[0-9]*=*)
      key=${arg%%=*}; key=${key#vs.}
      case "$key" in *[!a-z0-9]*) continue ;; esac
      eval "vs_$key=\${arg#*=}" ;;
    vs.gw=*) gw=${arg#*=} ;;
    vs.name=*) name=${arg#*=} ;;
  esac
done
[ -n "$name" ] && hostname "$name"

up_link() {  # $1=eth<n>: link up, static address vs.ip<n>, DHCP client if vs.dhcp<n>=1
  n=${1#eth}
  eval "addr=\${vs_ip$n-} dhcp=\${vs_dhcp$n-}"
  # A NIC hot-plugged after boot (vifscope attach) that the command line says nothing about
  # asks for DHCP, as a distribution's hotplug/ifupdown would.
  [ -n "$booted" ] && [ -z "$addr" ] && [ -z "$dhcp" ] && dhcp=1
  ip link set "$1" up
  [ -n "$addr" ] && ip addr add "$addr" dev "$1"
  if [ "$dhcp" = 1 ]; then
    udhcpc -f -i "$1" -s /etc/udhcpc.script >/dev/null 2>&1 &
  fi
  changed=1
}

scan_links() {  # bring up every eth<n> that is down: at boot and after NIC hotplug
  changed=
  for d in /sys/class/net/eth*; do
    [ -r "$d/flags" ] || continue
    read -r flags <"$d/flags"
    [ $((flags & 1)) = 0 ] && up_link "${d##*/}"
  done
  [ -n "$changed" ] && [ -n "$gw" ] && ip route replace default via "$gw" 2>/dev/null
}

# Answer ARP only on the NIC that owns the address, so each vif carries its own traffic.
echo 1 >/proc/sys/net/ipv4/conf/all/arp_ignore
echo 2 >/proc/sys/net/ipv4/conf/all/arp_announce
ip link set lo up
booted=
scan_links
booted=1
ip -o -4 addr show
echo "@MARKER@ name=$name"
# A root shell on the console for `virsh console` (pty serial); respawned, never PID 1.
(while :; do setsid cttyhack sh; sleep 1; done) &
while :; do sleep 2; scan_links; done
