"""``vifscope top``: live per-vif rates in a terminal."""
