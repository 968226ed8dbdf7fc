"""The kernel's side: rtnetlink dumps, link/address/qdisc/neighbour readers, procfs, the packet filter."""
