"""``vifscope watch``: event-driven binding verdicts (libvirt events + netlink + OVSDB) and,
with ``--heal``, re-applying broken bindings through the actions layer.

I/O lives in lvevents (libvirt), nlmon (rtnetlink), ovsmon (OVSDB), live (link/OVS dumps)
and heal_actions (the actions layer); state, policy, healing, output and config are pure.
handlers (one per event) and heal_run (the heal pass) decide, returning effects (effects);
daemon runs the loop and applies them, and is the only module that imports them all.
"""
