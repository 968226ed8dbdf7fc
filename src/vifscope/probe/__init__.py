"""``doctor --probe``: active reachability hops from a private namespace plugged into a vif's bridge."""
