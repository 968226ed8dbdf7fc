"""Per-tap flow accounting: a BPF tc program (bpf/flows.bpf.c) attached with TCX, read over
ctypes from libbpf.so.1."""
